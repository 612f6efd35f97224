// `callveil check`: what the gateway needs, one PASS/FAIL line each.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import type { Registrar } from '../cli-command.js';
import { configOption } from '../shared-options.js';

export const registerCheck: Registrar = (root, { env, io }) => {
  root
    .command('check')
    .summary('PASS/FAIL for config, keys, storage, AMI, Kafka')
    .description(
      'Checks what the gateway needs before its first start, one PASS or FAIL line each: the config, every ' +
        "tenant's key, the storage dir and spool, the AMI login (and the CoreShowChannels permission a resync " +
        'needs), the CDR store when sources.cdrStore is on (its rows must have a uniqueid: loguniqueid=yes), ' +
        'whether the AMI user may stop recordings (StopMixMonitor on a channel that cannot exist: ' +
        '"No such channel" means permitted, "Permission denied" means write=call is missing; nothing real is ' +
        'stopped) when consent.enforce is on, and Kafka metadata. Each FAIL names the cause and the fix; no secret is printed. Exit 1 if any ' +
        'check failed.',
    )
    .addOption(configOption())
    .examples('callveil check --config /etc/callveil/config.yaml')
    .run<{ config: string }>(async (o) => {
      const { runChecks } = await import('../check.js');
      const ok = await runChecks(o.config, env, (pass, what, detail) =>
        io.stdout(`${pass ? 'PASS' : 'FAIL'}  ${what}: ${detail}\n`),
      );
      io.stdout(ok ? 'all checks passed\n' : 'some checks failed\n');
      return ok ? 0 : 1;
    });
};
