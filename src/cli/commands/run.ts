// `callveil run`: the live gateway.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import type { Registrar } from '../cli-command.js';
import type { RunOptions } from '../run.js';
import { optionalConfigOption } from '../shared-options.js';

export const registerRun: Registrar = (root, { env }) => {
  root
    .command('run')
    .summary('runs the gateway: AMI in, clean records out')
    .description(
      'Runs the gateway: logs in to AMI as the config says (reconnecting with backoff), builds and cleans one ' +
        'record per Asterisk CDR and publishes it to the configured sink (Kafka, a JSONL file or stdout); the ' +
        'tenant API and metrics listen if configured. SIGTERM or SIGINT drain in-flight records (to Kafka or ' +
        'the disk spool) and exit 0. Logs go to stderr; the stdout sink writes records to stdout. Without ' +
        '--config, AMI comes from CALLVEIL_AMI_HOST, _PORT, _USERNAME and _SECRET (or _SECRET_FILE).',
    )
    .addOption(optionalConfigOption())
    .examples('callveil run --config /etc/callveil/config.yaml')
    .run<RunOptions>(async (o) => (await import('../run.js')).run(o, env));
};
