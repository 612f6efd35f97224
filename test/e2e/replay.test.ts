// The whole path on real captures: built-in AMI server -> real AMI client ->
// assembler -> privacy -> JSONL file, checked against Asterisk's Master.csv and
// scanned for leaks (records, file bytes, logs, summary).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replayCapture } from '../../src/main.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
import { createJsonlFileSink } from '../../src/sink/jsonl.js';
import { captureFile, masterCsvFile, needlesForCapture, readMasterCsv } from '../helpers/ground-truth.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { twoTenantConfig } from '../helpers/configs.js';
import { idsOfRow } from '../helpers/record-ids.js';
import { memoryLog } from '../helpers/memory-log.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir(t, 'e2e');

for (const name of [
  'basic-internal',
  'inbound-pstn',
  'outbound-pstn',
  'recording-consent',
  'edge-actions',
  'transfers-queue',
  'load',
]) {
  t.test(
    `${name}: one record per Master.csv row, same disposition, duration, billsec and times, no leak`,
    async (t) => {
      const out = join(dir, `${name}.jsonl`);
      const { log, text } = memoryLog();
      const loaded = twoTenantConfig();
      const summary = await replayCapture({
        capturePath: captureFile(name),
        loaded,
        sink: createJsonlFileSink(out),
        log,
      });
      const fileBytes = readFileSync(out);
      const records = fileBytes
        .toString('utf8')
        .trim()
        .split('\n')
        .map((l) => CdrRecord.parse(JSON.parse(l)));
      const master = readMasterCsv(masterCsvFile(name));

      t.equal(summary.withheld, 0, 'nothing withheld with both tenants configured');
      t.equal(records.length, master.length, 'one record per Master.csv row');
      t.equal(summary.cdrs, master.length);

      // Joined by the id computed from the Master.csv row alone: Asterisk's own store gives each record's id.
      const byId = new Map(records.map((r) => [r.id, r]));
      t.equal(byId.size, records.length, 'every record has its own id');
      const iso = (s: string) => (s === '' ? null : new Date(s.replace(' ', 'T') + 'Z').toISOString());
      for (const row of master) {
        const tenant = row.accountcode === '' ? 'acme' : row.accountcode;
        const ids = idsOfRow(loaded, tenant, row);
        const rec = byId.get(ids.id);
        t.ok(rec, `record for ${row.uniqueid} seq ${row.sequence}: the id computed from its Master.csv row`);
        if (!rec) continue;
        t.same(
          [rec.disposition, rec.durationSec, rec.billSec, rec.startedAt, rec.answeredAt, rec.endedAt, rec.lastApp],
          [row.disposition, row.duration, row.billsec, iso(row.start), iso(row.answer), iso(row.end), row.lastapp],
          `${row.uniqueid} seq ${row.sequence} matches Master.csv`,
        );
        t.same(
          [rec.callId, rec.legId],
          [ids.callId, ids.legId],
          "call and leg ids from the row's linkedid and uniqueid",
        );
        t.equal(rec.tenant, tenant, 'tenant from accountcode');
      }

      const leaks = scanBuffers(needlesForCapture(name), [
        { label: 'jsonl', data: fileBytes },
        { label: 'log', data: text() },
        { label: 'summary', data: JSON.stringify(summary) },
      ]);
      t.same(leaks, [], 'no raw number or name in anything written');

      if (name === 'load') {
        // The load capture has one subscriber in two formats within one tenant: +12025550163 and 2025550163.
        const legsOf = (src: string) =>
          new Set(
            master
              .filter((r) => r.src === src && r.accountcode === 'acme')
              .map((r) => idsOfRow(loaded, 'acme', r).legId),
          );
        const tokensOf = (legs: Set<string>) =>
          new Set(records.filter((r) => legs.has(r.legId)).map((r) => r.caller?.token));
        const a = tokensOf(legsOf('+12025550163'));
        const b = tokensOf(legsOf('2025550163'));
        t.equal(a.size, 1, 'both formats occur in the capture');
        t.same([...a], [...b], 'one subscriber, one token, whatever the format');
      }
    },
  );
}
