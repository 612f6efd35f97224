// The command tree: the root and every command group. A new command group is
// a file under src/cli/commands/ exporting a Registrar (its definitions, which
// import the implementation when the command runs), and one line in REGISTRARS.
import { readFileSync } from 'node:fs';
import { SCHEMA_VERSION } from '../version.js';
import { createRoot, type CliCommand, type CliContext, type Registrar } from './cli-command.js';
import { registerAudit } from './commands/audit.js';
import { registerCheck } from './commands/check.js';
import { registerCompletion } from './commands/completion.js';
import { registerReconcile } from './commands/reconcile.js';
import { registerKeys } from './commands/keys.js';
import { registerReplay } from './commands/replay.js';
import { registerRules } from './commands/rules.js';
import { registerRun } from './commands/run.js';
import { registerSchema } from './commands/schema.js';
import { registerSubject } from './commands/subject.js';
import { registerTenant } from './commands/tenant.js';

/** In the order `callveil --help` lists them. */
const REGISTRARS: readonly Registrar[] = [
  registerRun,
  registerReplay,
  registerReconcile,
  registerSchema,
  registerCheck,
  registerAudit,
  registerKeys,
  registerRules,
  registerSubject,
  registerTenant,
  registerCompletion,
];

const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

export function callveilVersion(): string {
  const { version } = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string };
  return `callveil ${version} (record schema ${SCHEMA_VERSION})`;
}

export function buildProgram(ctx: CliContext): CliCommand {
  const root = createRoot(ctx)
    .description(
      'A privacy gateway for Asterisk: AMI events in, pseudonymised call records out to Kafka. No raw ' +
        'phone number, caller name or Asterisk id leaves process memory.',
    )
    .version(callveilVersion(), '-V, --version', 'print the version (also -v)')
    .helpCommand('help [command]', "a command's help")
    .addHelpText(
      'after',
      [
        '',
        'Each command has its own help: callveil <command> --help.',
        'Configuration: a YAML or JSON file (--config), CALLVEIL_* environment variables.',
        'Exit codes: 0 done, 1 failed, 2 usage error.',
      ].join('\n'),
    );
  for (const register of REGISTRARS) register(root, ctx);
  return root;
}
