// The ids line up: every capture replayed through the live path (call model,
// privacy) and its Master.csv read by the store reader give the same record
// id, call id and leg id for each CDR, in the same tenant; a store record
// says source cdr-store and claims nothing the store does not hold.
import t from 'tap';
import { buildPipeline } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import type { CdrRecord } from '../../src/privacy/cdr-record.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import { readStore, type MasterRow } from '../../src/reconcile/master-csv.js';
import { callOfRow, createStoreLegs } from '../../src/reconcile/store-leg.js';
import { Writable } from 'node:stream';
import { twoTenantConfig } from '../helpers/configs.js';
import { CAPTURES, masterCsvFile, readCapture, readFixture } from '../helpers/ground-truth.js';
import { messagesOf } from '../helpers/model-run.js';

const quiet = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));

async function liveRecords(name: string): Promise<CdrRecord[]> {
  const records: CdrRecord[] = [];
  const pipeline = buildPipeline(
    twoTenantConfig(),
    {
      name: 'mem',
      write: (r) => (r.stream === 'cdr' && records.push(JSON.parse(r.value) as CdrRecord), Promise.resolve()),
      close: () => Promise.resolve(),
    },
    quiet,
  );
  for (const m of messagesOf(readCapture(name))) pipeline.handle(m);
  pipeline.flush();
  await pipeline.drain();
  return records;
}

function storeRecords(rows: readonly MasterRow[]): CdrRecord[] {
  const loaded = twoTenantConfig();
  const legs = createStoreLegs({ rules: () => loaded.privacy, timeZone: 'UTC' });
  const sanitise = createSanitiser(loaded.privacy);
  const byCall = new Map<string, MasterRow[]>();
  for (const r of rows) byCall.set(callOfRow(r), [...(byCall.get(callOfRow(r)) ?? []), r]);
  const out: CdrRecord[] = [];
  for (const group of byCall.values()) {
    const tenant = legs.tenantOf(group);
    for (const row of group) {
      const leg = legs.leg(row, tenant);
      if (leg === undefined) throw new Error('unreadable times');
      const s = sanitise(leg);
      if (!s.ok) throw new Error(`withheld: ${s.reason}`);
      if (legs.idOf(row, tenant) !== s.record.id) throw new Error('idOf is not the id the record gets');
      out.push(s.record);
    }
  }
  return out;
}

for (const name of CAPTURES) {
  t.test(`${name}: a Master.csv row gets the id its live record had`, async (t) => {
    const store = readStore(readFixture(masterCsvFile(name)));
    t.equal(
      Object.values(store.problems).reduce((a, n) => a + n, 0),
      0,
      'every row readable',
    );
    const fromStore = storeRecords(store.rows);
    const live = await liveRecords(name);
    t.equal(new Set(fromStore.map((r) => r.id)).size, store.rows.length, 'one distinct id per row');
    const byId = new Map(fromStore.map((r) => [r.id, r]));
    const liveComplete = live.filter((r) => r.complete);
    t.equal(liveComplete.length, store.rows.length, 'the live path saw every CDR');
    for (const l of liveComplete) {
      const s = byId.get(l.id);
      t.ok(s, `live record ${l.id} has its store row`);
      if (s === undefined) continue;
      t.same(
        [
          s.tenant,
          s.callId,
          s.legId,
          s.disposition,
          s.durationSec,
          s.billSec,
          s.startedAt,
          s.answeredAt,
          s.endedAt,
          s.lastApp,
        ],
        [
          l.tenant,
          l.callId,
          l.legId,
          l.disposition,
          l.durationSec,
          l.billSec,
          l.startedAt,
          l.answeredAt,
          l.endedAt,
          l.lastApp,
        ],
        'same tenant, ids, disposition, durations, times and lastApp',
      );
      t.equal(s.source, 'cdr-store');
      t.equal(s.recording, 'none');
      t.equal(s.caller?.token ?? null, l.caller?.token ?? null, 'same caller token');
    }
  });
}

t.test('direction from the channel names agrees with the live path on most legs', async (t) => {
  let same = 0;
  let all = 0;
  for (const name of CAPTURES) {
    const fromStore = new Map(storeRecords(readStore(readFixture(masterCsvFile(name))).rows).map((r) => [r.id, r]));
    for (const l of await liveRecords(name)) {
      const s = fromStore.get(l.id);
      if (s === undefined || l.direction === undefined) continue;
      all++;
      if (s.direction === l.direction) same++;
    }
  }
  t.ok(all > 1000 && same / all > 0.9, `direction agrees on ${same} of ${all} legs`);
});
