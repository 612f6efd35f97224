// `tenant shred` and the spool: a tenant's spooled records are sealed under a
// key derived from its id key (the keys file's idKeys entry), so destroying
// that key makes them unreadable. Shred says how many; the gateway's next
// start does not send them, counts them (records_withheld_total{reason=
// "shredded"}) and drains the other tenants' records as before.
import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cmdTenant } from '../../src/cli/subject-rights.js';
import { loadConfigFile } from '../../src/config/load.js';
import { openSink, spoolDir, spoolKeysFor } from '../../src/main.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { DeliverySink } from '../../src/sink/delivery.js';
import type { OutRecord } from '../../src/sink/sink.js';
import { openSpool } from '../../src/sink/spool.js';
import { openSpoolLine, sealSpoolRecord, tenantOfSealedLine } from '../../src/sink/spool-seal.js';
import { ID_KEY_ACME, ID_KEY_GLOBEX, KEY_ACME, KEY_GLOBEX, RULES_DIR } from '../helpers/configs.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY_HEX } from '../helpers/audit-key.js';
import { ENV, memoryLogger } from './suppression-fixtures.js';

const RUN_ENV = { ...ENV, K_NORTHWIND: 'c3d2'.repeat(16) };

/** acme's id key in a secret file (shred destroys it), globex's inline; Kafka at `broker`. */
function deployment(broker: string) {
  const dir = tempDir(t, 'shred-spool');
  const acmeKey = join(dir, 'acme.key');
  const acmeId = join(dir, 'acme-id.key');
  writeFileSync(acmeKey, KEY_ACME + '\n');
  writeFileSync(acmeId, ID_KEY_ACME + '\n');
  const keys = join(dir, 'keys.yaml');
  writeFileSync(
    keys,
    [
      'keySets:',
      '  acme:',
      `    - { kid: acme-1, secretFile: ${acmeKey}, activeFrom: "2021-01-01T00:00:00Z" }`,
      '  globex:',
      `    - { kid: globex-1, secret: "${KEY_GLOBEX}", activeFrom: "2021-01-01T00:00:00Z" }`,
      '  northwind:',
      '    - { kid: northwind-1, secretEnv: K_NORTHWIND, activeFrom: "2021-01-01T00:00:00Z" }',
      'idKeys:',
      `  acme: { secretFile: ${acmeId} }`,
      `  globex: { secret: "${ID_KEY_GLOBEX}" }`,
      `  northwind: { secret: "${'c4e5'.repeat(16)}" }`,
      `auditKey: { secret: "${TEST_AUDIT_KEY_HEX}" }`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `rules: { dir: ${RULES_DIR}, keysFile: ${keys} }`,
      `storage: { dir: ${join(dir, 'data')} }`,
      `sink: { type: kafka, brokers: ["${broker}"], requestTimeoutMs: 1000 }`,
      'delivery: { sendTimeoutMs: 500, retryIntervalMs: 50, shutdownDeadlineMs: 200 }',
      '',
    ].join('\n'),
  );
  return { dir, config, acmeId };
}

const rec = (tenant: string, i: number): OutRecord => ({
  stream: 'cdr',
  tenant,
  id: `${tenant}-record-${i}`,
  key: `${tenant}-call-${i}`,
  value: JSON.stringify({ schema: 'test', tenant, id: `${tenant}-record-${i}` }),
});

t.test(
  "shred makes the tenant's spooled records unreadable, says how many; the next start drops and counts them",
  async (t) => {
    const broker = await startKafkaBroker();
    t.teardown(() => broker.close());
    const d = deployment(broker.address);
    const before = loadConfigFile(d.config, RUN_ENV);
    const keys = spoolKeysFor(before);
    const dir = spoolDir(before.config);
    // What a run with Kafka away left: both tenants' records, interleaved, sealed under their keys.
    const written = [rec('acme', 1), rec('globex', 1), rec('acme', 2), rec('acme', 3), rec('globex', 2)];
    const spool = openSpool({ dir, maxBytes: 1 << 20, segmentMaxBytes: 300, fsync: 'always', fsyncIntervalMs: 10 });
    for (const r of written) spool.append([sealSpoolRecord(keys, r)]);
    spool.close();
    t.ok(readdirSync(dir).length > 1, 'in several segments');

    let out = '';
    const code = await cmdTenant(
      ['shred', '--config', d.config, '--tenant', 'acme', '--confirm-destroy-keys', 'acme'],
      RUN_ENV,
      (s) => void (out += s),
    );
    t.equal(code, 0, out);
    t.match(out, /\n {2}spool: 3 records of the tenant can no longer be read \(sealed under its destroyed id key\)/);

    const after = loadConfigFile(d.config, RUN_ENV);
    const now = spoolKeysFor(after);
    t.equal(now.key('acme'), undefined, 'no key for acme any more');
    t.ok(now.shredded('acme'));
    const lines = readdirSync(dir)
      .sort()
      .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean));
    t.same(
      lines.filter((l) => tenantOfSealedLine(l) === 'acme').map((l) => openSpoolLine(now, l)),
      [1, 2, 3].map(() => ({ ok: false, reason: 'shredded', tenant: 'acme', problem: 'no-key' })),
      "acme's records cannot be opened",
    );

    // The gateway's next start: globex drains, acme's records are withheld (shredded), counted, logged.
    const metrics = createMetrics();
    const { log, text } = memoryLogger();
    const sink = (await openSink(after, RUN_ENV, log, metrics)) as DeliverySink;
    await sink.drained(20_000);
    await sink.close();
    t.same(
      broker.records('callveil.globex.cdr').map((m) => m.key!.toString()),
      ['globex-call-1', 'globex-call-2'],
      'globex: every record, in order',
    );
    t.same(broker.records('callveil.acme.cdr'), [], 'nothing of acme is sent');
    t.equal(metrics.value('records_withheld_total', { reason: 'shredded', tenant: 'acme' }), 3);
    t.equal(metrics.value('records_failed_total', { stage: 'spool-unreadable' }), 0);
    t.same(readdirSync(dir), [], 'the spool is empty');
    const said = text()
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.reason === 'shredded');
    t.equal(
      said.reduce((a, l) => a + (l.records as number), 0),
      3,
      'logged with counts',
    );
    t.notMatch(JSON.stringify(said), /acme-record|acme-call/, 'and without data');
  },
);
