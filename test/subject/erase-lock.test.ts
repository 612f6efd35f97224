// The state dir lock that keeps erase/shred/suppress-from-the-CLI and a
// running gateway apart: one holder, stale holders taken over, a holder on
// another host never silently ignored by a command.
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireStateLock, readStateLock, STATE_LOCK_FILE, type LockEnv } from '../../src/subject/state-lock.js';
import { tempDir } from '../helpers/temp-dir.js';

const NOW = new Date('2026-11-23T08:00:00Z');
const live = new Set([100, 200]);
const env = (pid: number, host = 'pbx-1'): LockEnv => ({ pid, host, alive: (p) => live.has(p), now: () => NOW });

t.test('one holder at a time; release lets the next one in', async (t) => {
  const dir = tempDir(t, 'lock');
  const gw = acquireStateLock(dir, { kind: 'gateway', command: 'gateway' }, env(100));
  t.match(readStateLock(dir), { kind: 'gateway', pid: 100, host: 'pbx-1', since: NOW.toISOString() });
  t.throws(() => acquireStateLock(dir, { kind: 'cli', command: 'subject erase' }, env(200)), {
    code: 'GW_STATE_LOCKED',
    message: /in use by a running gateway \(pid 100 on host pbx-1.*stop the gateway first, or use the tenant API/,
  });
  t.throws(
    () => acquireStateLock(dir, { kind: 'gateway', command: 'gateway' }, env(200)),
    { code: 'GW_STATE_LOCKED' },
    'a second gateway on the same state dir is refused',
  );
  gw.release();
  t.notOk(existsSync(join(dir, STATE_LOCK_FILE)));
  const cli = acquireStateLock(dir, { kind: 'cli', command: 'tenant shred' }, env(200));
  t.throws(
    () => acquireStateLock(dir, { kind: 'gateway', command: 'gateway' }, env(100)),
    { message: /"callveil tenant shred" \(pid 200.*wait for it to finish/ },
    'a gateway does not start under a running command',
  );
  cli.release();
  cli.release();
});

t.test('a dead holder on this host is taken over; a torn lock only once it is old', async (t) => {
  const dir = tempDir(t, 'lock-stale');
  acquireStateLock(dir, { kind: 'gateway', command: 'gateway' }, env(999)); // 999 is not alive: crashed
  const cli = acquireStateLock(dir, { kind: 'cli', command: 'subject erase' }, env(200));
  t.match(readStateLock(dir), { pid: 200, command: 'subject erase' });
  cli.release();
  writeFileSync(join(dir, STATE_LOCK_FILE), '{"kind":"gat');
  t.throws(
    () => acquireStateLock(dir, { kind: 'cli', command: 'subject erase' }, env(200)),
    { message: /being written by another process/ },
    'fresh and torn: its writer may be mid-write',
  );
  const later: LockEnv = { ...env(200), now: () => new Date(Date.now() + 5000) };
  const taken = acquireStateLock(dir, { kind: 'cli', command: 'subject erase' }, later);
  t.match(JSON.parse(readFileSync(join(dir, STATE_LOCK_FILE), 'utf8')), { pid: 200 });
  taken.release();
});

t.test(
  'another host: a command asks a human; a starting gateway replaces a gateway from a replaced container',
  async (t) => {
    const dir = tempDir(t, 'lock-host');
    acquireStateLock(dir, { kind: 'gateway', command: 'gateway' }, env(1, 'old-container'));
    t.throws(() => acquireStateLock(dir, { kind: 'cli', command: 'subject erase' }, env(1, 'new-container')), {
      message: new RegExp(
        `locked by a running gateway \\(pid 1 on host old-container.*if nothing runs there any more, delete ${join(dir, STATE_LOCK_FILE)}`,
      ),
    });
    const gw = acquireStateLock(dir, { kind: 'gateway', command: 'gateway' }, env(1, 'new-container'));
    t.match(readStateLock(dir), { host: 'new-container' });
    gw.release();
    acquireStateLock(dir, { kind: 'cli', command: 'tenant shred' }, env(5, 'ops-box'));
    t.throws(
      () => acquireStateLock(dir, { kind: 'gateway', command: 'gateway' }, env(1, 'new-container')),
      { code: 'GW_STATE_LOCKED' },
      'a command on another host is never taken over',
    );
  },
);

t.test('a lock naming this process but not taken by it (a restarted container) is taken over', async (t) => {
  const dir = tempDir(t, 'lock-self');
  const { writeFileSync } = await import('node:fs');
  const { hostname } = await import('node:os');
  const { join } = await import('node:path');
  writeFileSync(
    join(dir, STATE_LOCK_FILE),
    JSON.stringify({
      kind: 'gateway',
      command: 'gateway',
      pid: process.pid,
      host: hostname(),
      since: 'x',
      nonce: 'ef'.repeat(8),
    }),
  );
  const lock = acquireStateLock(dir, { kind: 'gateway', command: 'gateway' });
  t.equal(readStateLock(dir)?.pid, process.pid);
  t.throws(() => acquireStateLock(dir, { kind: 'cli', command: 'subject erase' }), { code: 'GW_STATE_LOCKED' });
  lock.release();
});
