// The delivery layer against a primary sink that a test can break and mend.
import t from 'tap';
import type { OutRecord } from '../../src/sink/sink.js';
import { createDeliverySink } from '../../src/sink/delivery.js';
import { openSpool } from '../../src/sink/spool.js';
import { testSpoolKeys } from '../helpers/spool-keys.js';
import { tempDir } from '../helpers/temp-dir.js';

const quiet = { warn() {}, error() {}, info() {} };
const keys = testSpoolKeys();
const rec = (i: number): OutRecord => ({
  stream: 'cdr',
  tenant: 'acme',
  id: `r${i}`,
  key: `c${i}`,
  value: `{"id":"r${i}"}`,
});

function flakyPrimary() {
  const acked: string[] = [];
  const state = { mode: 'up' as 'up' | 'down' | 'stall' };
  return {
    acked,
    state,
    write(r: OutRecord) {
      if (state.mode === 'down') return Promise.reject(Object.assign(new Error('down'), { code: 'GW_SINK_WRITE' }));
      if (state.mode === 'stall') return new Promise<void>(() => undefined);
      acked.push(r.id);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

function setup(maxBytes = 1 << 20) {
  const primary = flakyPrimary();
  const spool = openSpool({
    dir: tempDir(t, 'deliv'),
    maxBytes,
    segmentMaxBytes: 200,
    fsync: 'always',
    fsyncIntervalMs: 10,
  });
  const sink = createDeliverySink({
    primary,
    spool,
    keys,
    sendTimeoutMs: 50,
    retryIntervalMs: 20,
    closeDeadlineMs: 100,
    log: quiet,
  });
  return { primary, spool, sink };
}

t.test('outage: records spool, then drain in order when the primary returns; none lost', async (t) => {
  const { primary, spool, sink } = setup();
  await sink.write(rec(0));
  primary.state.mode = 'down';
  for (let i = 1; i <= 30; i++) await sink.write(rec(i));
  t.equal(sink.mode(), 'spooling');
  t.equal(spool.records(), 30, 'every record durable on disk');
  primary.state.mode = 'up';
  await sink.drained(5000);
  t.equal(sink.mode(), 'direct');
  t.same(
    primary.acked,
    Array.from({ length: 31 }, (_, i) => `r${i}`),
    'in order, each once',
  );
  await sink.close();
});

t.test('a stalled primary counts as away: writes settle via the spool', async (t) => {
  const { primary, spool, sink } = setup();
  primary.state.mode = 'stall';
  await sink.write(rec(1));
  t.equal(spool.records(), 1);
  primary.state.mode = 'up';
  await sink.drained(5000);
  t.same(primary.acked, ['r1']);
  await sink.close();
});

t.test('full spool: writers are held back (backpressure), nothing is dropped', async (t) => {
  const { primary, sink } = setup(200);
  primary.state.mode = 'down';
  const writes = Array.from({ length: 40 }, (_, i) => sink.write(rec(i)));
  await new Promise((r) => setTimeout(r, 200));
  t.ok(sink.spoolFull(), 'says so');
  let settled = 0;
  for (const w of writes) void w.then(() => settled++);
  await new Promise((r) => setTimeout(r, 50));
  t.ok(settled < 40, 'some writers wait');
  primary.state.mode = 'up';
  await Promise.all(writes);
  await sink.drained(5000);
  t.equal(new Set(primary.acked).size, 40, 'every record delivered');
  t.notOk(sink.spoolFull());
  await sink.close();
});

t.test('close within its deadline spools what is not acknowledged; the next start drains it first', async (t) => {
  const dir = tempDir(t, 'deliv');
  const mk = (primary: ReturnType<typeof flakyPrimary>) =>
    createDeliverySink({
      primary,
      spool: openSpool({ dir, maxBytes: 1 << 20, segmentMaxBytes: 4096, fsync: 'always', fsyncIntervalMs: 10 }),
      keys,
      sendTimeoutMs: 10_000,
      retryIntervalMs: 20,
      closeDeadlineMs: 100,
      log: quiet,
    });
  const p1 = flakyPrimary();
  p1.state.mode = 'stall';
  const s1 = mk(p1);
  const w = [s1.write(rec(1)), s1.write(rec(2))];
  const t0 = Date.now();
  await s1.close();
  await Promise.all(w);
  t.ok(Date.now() - t0 < 1000, 'close kept its deadline');
  const p2 = flakyPrimary();
  const s2 = mk(p2);
  t.equal(s2.mode(), 'spooling', 'starts by draining the earlier spool');
  await s2.write(rec(3));
  await s2.drained(5000);
  t.same(p2.acked, ['r1', 'r2', 'r3'], 'old records before new ones');
  await s2.close();
});
