import t from 'tap';
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openSpool, type SpoolOptions } from '../../src/sink/spool.js';
import { tempDir } from '../helpers/temp-dir.js';

const opts = (dir: string, over: Partial<SpoolOptions> = {}): SpoolOptions => ({
  dir,
  maxBytes: 10_000,
  segmentMaxBytes: 100,
  fsync: 'always',
  fsyncIntervalMs: 100,
  ...over,
});

t.test('appends roll into segments and drain oldest first, in order', async (t) => {
  const dir = tempDir(t, 'spool');
  const s = openSpool(opts(dir));
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: `r${i}` }));
  for (const l of lines) s.append([l]);
  t.equal(s.records(), 20);
  t.ok(readdirSync(dir).length > 1, 'several segments');
  const out: string[] = [];
  for (let seg = s.oldest(); seg; seg = s.oldest()) {
    out.push(...seg.lines);
    s.remove(seg.name);
  }
  t.same(out, lines);
  t.ok(s.isEmpty());
  t.equal(s.bytes(), 0);
  t.same(readdirSync(dir), []);
});

t.test('a full spool refuses (never drops silently) unless forced', async (t) => {
  const s = openSpool(opts(tempDir(t, 'spool'), { maxBytes: 50 }));
  s.append(['x'.repeat(40)]);
  t.throws(() => s.append(['y'.repeat(20)]), { code: 'GW_SPOOL_FULL' });
  t.equal(s.records(), 1);
  s.append(['z'.repeat(20)], true);
  t.equal(s.records(), 2, 'shutdown may overfill rather than lose');
});

t.test('reopening finds what an earlier run left, and cuts a torn last line', async (t) => {
  const dir = tempDir(t, 'spool');
  const a = openSpool(opts(dir, { segmentMaxBytes: 10_000 }));
  a.append(['{"id":"a"}', '{"id":"b"}']);
  // No close: as after kill -9. Then a write torn in the middle.
  appendFileSync(join(dir, readdirSync(dir)[0]!), '{"id":"c"');
  const b = openSpool(opts(dir));
  t.equal(b.records(), 2);
  t.same(b.oldest()?.lines, ['{"id":"a"}', '{"id":"b"}']);
  b.append(['{"id":"d"}']);
  const names = readdirSync(dir).sort();
  t.equal(names.length, 2, 'new records go to a new segment after the old ones');
});
