// `callveil rules check`, `callveil token`, `callveil reveal`.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import { optionalOption, type Registrar } from '../cli-command.js';
import type { RevealOptions, RulesCheckOptions, TokenOptions } from '../rules.js';
import { configOption, reasonOption, tenantOption } from '../shared-options.js';

export const registerRules: Registrar = (root, { env, io }) => {
  root
    .group('rules', 'the privacy rules folder')
    .command('check')
    .summary('validates a rules folder; exit 1 on any problem')
    .description(
      'Validates a rules folder the way the gateway loads it at start-up and on every reload: every problem ' +
        'with its file, line, path and what was expected. Exit 0 when every file is valid, 1 on any problem.',
    )
    .argument('[dir]', 'the rules folder', 'rules')
    .addOption(
      optionalOption(
        '--keys <file>',
        "the keys file the rules' key sets are in, as the config's rules.keysFile",
        'none: key sets and keys are not checked',
      ),
    )
    .addOption(
      optionalOption(
        '--default-tenant <tenant>',
        "the tenant of calls no rule matches, as the config's defaultTenant",
        'none: they are withheld',
      ),
    )
    .examples('callveil rules check', 'callveil rules check /etc/callveil/rules --keys /etc/callveil/keys.yaml')
    .run<RulesCheckOptions>(async (o, [dir]) => (await import('../rules.js')).rulesCheck(dir!, o, env, io.stdout));

  root
    .command('token')
    .summary("prints a number's tokens under a tenant's keys")
    .description(
      "Prints the subscriber number's token (and fpe value) under every live key of the tenant, the same " +
        'whatever format the number is typed in. The number is used in memory only: it is never printed or logged.',
    )
    .argument('<number>', "the subscriber's number, in any format (quote it if it holds spaces)")
    .addOption(configOption())
    .addOption(tenantOption())
    .examples("callveil token --config /etc/callveil/config.yaml --tenant acme '+44 7700 900999'")
    .run<TokenOptions>(async (o, [number]) => (await import('../rules.js')).token(o, number!, env, io.stdout));

  root
    .command('reveal')
    .summary('decrypts an fpe value (warned, audited)')
    .description(
      'Decrypts a value of a field kept with the fpe method back to the phone number, for a ' +
        "data-protection officer. It warns on stderr and appends an audit entry (the subscriber's token, never " +
        'the number) before printing anything; refused while a gateway runs on the same storage dir.',
    )
    .argument('<value>', 'the fpe value as the record carries it (+<digits>_<digits>)')
    .addOption(configOption())
    .addOption(tenantOption())
    .requiredOption('--kid <kid>', 'the key id the record names (keyId)')
    .addOption(reasonOption())
    .examples(
      'callveil reveal --config /etc/callveil/config.yaml --tenant globex --kid globex-2026-11 +44_1234567890 --reason DPO-42',
    )
    .run<RevealOptions>(async (o, [value]) =>
      (await import('../rules.js')).reveal(o, value!, env, io.stdout, io.stderr),
    );
};
