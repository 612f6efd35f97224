// The live follower on a real file: rows appended are read as they come,
// held for their Cdr event, held while AMI is down, skipped when already out;
// partial lines wait; rotation (rename + new file, copytruncate, and while
// stopped) loses nothing; the position survives a restart.
import t, { type Test } from 'tap';
import { appendFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buildPipeline } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import type { CdrRecord } from '../../src/privacy/cdr-record.js';
import { createStoreFollower, type StoreFollower } from '../../src/reconcile/follow.js';
import { twoTenantConfig } from '../helpers/configs.js';
import { masterCsvFile, readFixture, readMasterCsv } from '../helpers/ground-truth.js';
import { idsOfRow } from '../helpers/record-ids.js';
import { tempDir } from '../helpers/temp-dir.js';

const quiet = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));
const LINES = readFixture(masterCsvFile('inbound-pstn')).toString('utf8').trim().split('\n');
const ROWS = readMasterCsv('inbound-pstn');
const tenantOf = (row: { accountcode: string }) => (row.accountcode === '' ? 'acme' : row.accountcode);

function setup(t: Test) {
  const dir = tempDir(t, 'follow');
  const path = join(dir, 'Master.csv');
  const loaded = twoTenantConfig();
  const records: CdrRecord[] = [];
  const pipeline = buildPipeline(
    loaded,
    {
      name: 'mem',
      write: (r) => (records.push(JSON.parse(r.value) as CdrRecord), Promise.resolve()),
      close: () => Promise.resolve(),
    },
    quiet,
  );
  const published = new Set<string>();
  pipeline.onPublished((r) => published.add(r.id));
  let clock = 1_000_000;
  const followers: StoreFollower[] = [];
  const follower = () => {
    const f = createStoreFollower({
      path,
      pollIntervalMs: 1000,
      holdMs: 5000,
      stateDir: dir,
      rules: () => loaded.privacy,
      timeZone: 'UTC',
      pipeline,
      published,
      log: quiet,
      now: () => clock,
    });
    followers.push(f);
    return f;
  };
  t.teardown(() => Promise.all(followers.map((f) => f.stop())));
  const ids = (from: number, to: number) => ROWS.slice(from, to).map((r) => idsOfRow(loaded, tenantOf(r), r).id);
  return {
    dir,
    path,
    records,
    published,
    pipeline,
    follower,
    ids,
    advance: (ms: number) => void (clock += ms),
    got: () => records.map((r) => r.id),
  };
}

const rows = (from: number, to: number) =>
  LINES.slice(from, to)
    .map((l) => `${l}\n`)
    .join('');

t.test('new rows: held for their Cdr event and while AMI is down, then out once', async (t) => {
  const s = setup(t);
  writeFileSync(s.path, rows(0, 5));
  const f = s.follower();
  await f.poll();
  f.resume();
  s.advance(10_000);
  await f.poll();
  t.same(s.got(), [], 'a first start begins at the end: history is for callveil reconcile');
  appendFileSync(s.path, rows(5, 10));
  await f.poll();
  t.equal(f.stats().held, 5);
  t.same(s.got(), [], 'held: the Cdr event normally comes first');
  f.pause();
  s.advance(6000);
  await f.poll();
  t.same(s.got(), [], 'held while AMI is down (a gap placeholder must come first)');
  f.resume();
  await f.poll();
  await s.pipeline.drain();
  t.same(s.got(), s.ids(5, 10), 'then out, with the ids the rows give');
  t.ok(s.records.every((r) => r.source === 'cdr-store'));
  // A row the live path already published is not published again.
  s.published.add(s.ids(10, 11)[0]!);
  appendFileSync(s.path, rows(10, 12));
  await f.poll();
  s.advance(6000);
  await f.poll();
  await s.pipeline.drain();
  t.same(s.got(), s.ids(5, 10).concat(s.ids(11, 12)));
  t.equal(f.stats().alreadyPublished, 1);
});

t.test('a row written in two pieces waits for its end', async (t) => {
  const s = setup(t);
  writeFileSync(s.path, '');
  const f = s.follower();
  f.resume();
  await f.poll();
  const line = LINES[0]!;
  appendFileSync(s.path, line.slice(0, 40));
  await f.poll();
  t.equal(f.stats().rowsRead, 0);
  appendFileSync(s.path, `${line.slice(40)}\n`);
  await f.poll();
  s.advance(6000);
  await f.poll();
  await s.pipeline.drain();
  t.same(s.got(), s.ids(0, 1));
  t.same(f.stats().problems['bad-columns'], 0);
});

t.test('rotation: renamed and recreated, then truncated in place', async (t) => {
  const s = setup(t);
  writeFileSync(s.path, '');
  const f = s.follower();
  f.resume();
  await f.poll();
  appendFileSync(s.path, rows(0, 3));
  await f.poll();
  // cdr_csv appended more before logrotate moved the file; the new file gets the next rows.
  appendFileSync(s.path, rows(3, 6));
  renameSync(s.path, `${s.path}.1`);
  writeFileSync(s.path, rows(6, 9));
  await f.poll();
  t.equal(f.stats().rotations, 1);
  // copytruncate: the same inode starts again.
  truncateSync(s.path, 0);
  appendFileSync(s.path, rows(9, 11));
  await f.poll();
  t.equal(f.stats().rotations, 2);
  s.advance(6000);
  await f.poll();
  await s.pipeline.drain();
  t.same(s.got(), s.ids(0, 11), 'every row of the old and the new file, once, in order');
});

t.test('restart: held rows, rows written while stopped and a rotation while stopped are read', async (t) => {
  const s = setup(t);
  writeFileSync(s.path, '');
  const a = s.follower();
  a.resume();
  await a.poll();
  appendFileSync(s.path, rows(0, 4));
  await a.poll();
  s.advance(6000);
  await a.poll();
  appendFileSync(s.path, rows(4, 6));
  await a.poll();
  // Stopped (or killed) with 2 rows still held: they were never released.
  await a.stop();
  await s.pipeline.drain();
  t.same(s.got(), s.ids(0, 4));
  appendFileSync(s.path, rows(6, 8));
  renameSync(s.path, `${s.path}.1`);
  writeFileSync(s.path, rows(8, 10));
  const b = s.follower();
  b.resume();
  await b.poll();
  s.advance(6000);
  await b.poll();
  await s.pipeline.drain();
  t.same(s.got(), s.ids(0, 10), 'nothing lost, nothing twice');
});

t.test(
  'the position passes a row only once its record is settled: killed before the ack, it is read again',
  async (t) => {
    const dir = tempDir(t, 'follow');
    const path = join(dir, 'Master.csv');
    const loaded = twoTenantConfig();
    let ack: (() => void) | undefined;
    const acked = new Promise<void>((r) => (ack = r));
    const taken: string[] = [];
    const pipelineFor = (wait: boolean) =>
      buildPipeline(
        loaded,
        {
          name: 'slow',
          write: (r) => (wait ? acked : Promise.resolve()).then(() => void taken.push(r.id)),
          close: () => Promise.resolve(),
        },
        quiet,
      );
    let clock = 0;
    const make = (wait: boolean) =>
      createStoreFollower({
        path,
        pollIntervalMs: 1000,
        holdMs: 0,
        stateDir: dir,
        rules: () => loaded.privacy,
        timeZone: 'UTC',
        pipeline: pipelineFor(wait),
        published: new Set<string>(),
        log: quiet,
        now: () => clock++,
      });
    writeFileSync(path, '');
    const a = make(true);
    a.resume();
    await a.poll();
    appendFileSync(path, rows(0, 3));
    const pending = a.poll();
    await new Promise((r) => setTimeout(r, 200));
    t.same(taken, [], 'handed to the sink, not acknowledged');
    // Killed here: a new process reads the rows again.
    const b = make(false);
    b.resume();
    await b.poll();
    t.equal(b.stats().published, 3, 'the unacknowledged rows are read again');
    await b.stop();
    ack!();
    await pending;
    await a.stop();
  },
);
