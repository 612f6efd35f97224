// `callveil reconcile`: Asterisk's own CDR store (Master.csv) through the pipeline, for what is not out yet.
// Definitions only: the implementation is imported when the command runs.
import { optionalOption, type Registrar } from '../cli-command.js';
import type { ReconcileOptions } from '../reconcile.js';
import { configOption } from '../shared-options.js';
import { Option } from 'commander';

export const registerReconcile: Registrar = (root, { env, io }) => {
  root
    .command('reconcile')
    .summary("publishes the CDRs from Asterisk's Master.csv that are not out yet")
    .description(
      "Reads Asterisk's cdr_csv Master.csv once and publishes every CDR that is not out yet through the " +
        'configured sink, with the id its live record had (ids line up with loguniqueid=yes). Already out: ' +
        'ids in the storage dir ledger (what the sink acknowledged) and in the output itself (each tenant topic ' +
        'from --since, or the JSONL file). Records say source "cdr-store" and recording "none"; a row that ' +
        'stands for a complete:false placeholder carries replaces. Rows that cannot be used are withheld by ' +
        'problem. Leg records only, no call records. stdout gets one JSON line: rowsRead, outsideWindow, ' +
        'alreadyPublished, newlyPublished, replacedPlaceholders, withheld (by problem and reason), sinkFailures, ' +
        'ms, rowsPerSec, alreadyPublishedFrom. Progress is drawn on a terminal. Uses the state dir (ledger, ' +
        'spool): run it while the gateway is stopped (a running gateway holds the lock, and with sources.cdrStore ' +
        'follows the store itself). Exit 1 if a record could not be written.',
    )
    .addOption(configOption())
    .addOption(new Option('--from <file>', 'the Master.csv to read (.csv or .csv.gz)').makeOptionMandatory())
    .addOption(optionalOption('--since <time>', 'only CDRs that ended at or after TIME (ISO 8601)', 'from the start'))
    .addOption(optionalOption('--until <time>', 'only CDRs that ended before TIME (ISO 8601)', 'to the end'))
    .addOption(
      optionalOption(
        '--out <file>',
        'write the reconciled leg records to FILE (JSONL) instead of the configured sink; required with sink.type jsonl',
        'the configured sink',
      ),
    )
    .examples(
      'callveil reconcile --config /etc/callveil/config.yaml --from /var/log/asterisk/cdr-csv/Master.csv',
      'callveil reconcile --config /etc/callveil/config.yaml --from Master.csv --since 2026-11-23T07:00:00Z --until 2026-11-23T09:00:00Z',
    )
    .run<ReconcileOptions>(async (o) => (await import('../reconcile.js')).reconcile(o, env, io));
};
