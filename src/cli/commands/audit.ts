// `callveil audit verify`: the audit log's hash chain.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import { Option } from 'commander';
import { optionalOption, type Registrar } from '../cli-command.js';
import type { AuditVerifyOptions } from '../audit.js';

export const registerAudit: Registrar = (root, { env, io }) => {
  root
    .group('audit', 'the audit log')
    .command('verify')
    .summary("checks the audit log's hash chain")
    .description(
      "Checks the audit log's keyed hash chain from its first entry (or from the anchor retention left) to " +
        'its last, and names the first line that was edited, removed or reordered. Exit 0 when intact, 1 when not.',
    )
    .synopsis('[--config FILE | --file PATH]')
    .addOption(
      optionalOption(
        '--config <file>',
        'the configuration file: verifies audit.jsonl in its storage.dir',
        './callveil-data/audit.jsonl',
      ),
    )
    .addOption(new Option('--file <path>', 'the audit log file itself, instead of --config').conflicts('config'))
    .examples(
      'callveil audit verify --config /etc/callveil/config.yaml',
      'callveil audit verify --file /var/lib/callveil/audit.jsonl',
    )
    .run<AuditVerifyOptions>(async (o) => (await import('../audit.js')).auditVerify(o, env, io));
};
