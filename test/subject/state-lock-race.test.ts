// 20 processes race for a stale state lock, 50 rounds: exactly one holds it each round.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/temp-dir.js';
import { readStateLock, STATE_LOCK_FILE } from '../../src/subject/state-lock.js';

// The contenders run the built code (`npm run build` first): 20 plain node processes start in well
// under a second, where 20 TypeScript loaders took most of a minute on a busy machine.
const BUILT = fileURLToPath(new URL('../../dist/subject/state-lock.js', import.meta.url));
const SOURCES = ['src/subject/state-lock.ts', 'src/lock-file.ts'].map((p) =>
  fileURLToPath(new URL(`../../${p}`, import.meta.url)),
);
// On each `go`: wait for the shared start instant, try once, report.
const CONTENDER = `
import { acquireStateLock } from ${JSON.stringify(BUILT)};
process.on('message', (m) => {
  if (m === 'exit') process.exit(0);
  while (Date.now() < m.at) {} // spin to the start instant: a timer would spread the contenders out
  try {
    acquireStateLock(m.dir, { kind: 'cli', command: 'contender' });
    process.send({ round: m.round, ok: true, pid: process.pid });
  } catch (err) {
    process.send({ round: m.round, ok: false, code: err.code, pid: process.pid });
  }
});
process.send('ready');
`;
const CONTENDERS = 20;
const ROUNDS = 50;

interface Report {
  readonly round: number;
  readonly ok: boolean;
  readonly pid: number;
  readonly code?: string;
}

t.test(`${CONTENDERS} contenders x ${ROUNDS} rounds over a stale lock: one holder each round`, async (t) => {
  const builtAt = statSync(BUILT).mtimeMs;
  for (const src of SOURCES) t.ok(statSync(src).mtimeMs <= builtAt, `${src} is built (run npm run build first)`);
  const dir = tempDir(t, 'lock-race');
  // A pid that surely ran on this host and is gone: the stale holder.
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  const children: ChildProcess[] = [];
  t.teardown(() => {
    for (const c of children) c.kill('SIGKILL');
  });
  const reports = new Map<number, Report[]>();
  const waiters = new Map<number, () => void>();
  await Promise.all(
    Array.from({ length: CONTENDERS }, () => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', CONTENDER], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(c);
      return new Promise<void>((resolve, reject) => {
        c.once('error', reject);
        c.on('message', (m: Report | 'ready') => {
          if (m === 'ready') return resolve();
          const list = reports.get(m.round) ?? [];
          list.push(m);
          reports.set(m.round, list);
          if (list.length === CONTENDERS) waiters.get(m.round)?.();
        });
      });
    }),
  );
  const started = Date.now();
  const outcomes: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternately a stale lock with a holder, and a torn one an older version left.
    const stale =
      round % 5 === 4
        ? '{"kind":"gateway"'
        : JSON.stringify({
            kind: 'gateway',
            command: 'gateway',
            pid: deadPid,
            host: hostname(),
            since: new Date(0).toISOString(),
            nonce: randomBytes(8).toString('hex'),
          });
    writeFileSync(join(dir, STATE_LOCK_FILE), stale, { mode: 0o600 });
    if (round % 5 === 4) utimesSync(join(dir, STATE_LOCK_FILE), new Date(0), new Date(0));
    const done = new Promise<void>((resolve) => waiters.set(round, resolve));
    const at = Date.now() + 30;
    for (const c of children) c.send({ dir, round, at });
    await done;
    const list = reports.get(round)!;
    const winners = list.filter((r) => r.ok);
    outcomes.push(winners.length);
    if (winners.length !== 1) {
      t.fail(`round ${round}: ${winners.length} holders`, { reports: list });
      continue;
    }
    t.equal(readStateLock(dir)?.pid, winners[0]!.pid, `round ${round}: the lock names the one holder`);
    t.same(
      list.filter((r) => !r.ok).map((r) => r.code),
      Array(CONTENDERS - 1).fill('GW_STATE_LOCKED'),
      `round ${round}: every other contender is refused`,
    );
    t.same(readdirSync(dir), [STATE_LOCK_FILE], `round ${round}: no temp or claim file left`);
  }
  t.same(outcomes, Array(ROUNDS).fill(1), 'exactly one holder in every round');
  t.comment(`rounds took ${Date.now() - started} ms`);
  for (const c of children) c.send('exit');
});
