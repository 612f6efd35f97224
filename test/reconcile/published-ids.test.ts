// The ledger of acknowledged ids: durable across a reopen, old days removed,
// bounded to the newest ids when asked, and nothing but keyed ids in it.
import t from 'tap';
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openPublishedIds, ledgerDir } from '../../src/reconcile/published-ids.js';
import { tempDir } from '../helpers/temp-dir.js';

const id = (n: number) =>
  n
    .toString(16)
    .padStart(32, '0')
    .replace(/[0-9a-f]/g, (c) => 'abcdefghijklmnop'[parseInt(c, 16)]!);

t.test('ids survive a reopen; a bounded ledger keeps the newest', async (t) => {
  const dir = tempDir(t, 'ledger');
  const day = new Date('2026-11-23T10:00:00Z');
  const a = openPublishedIds({ stateDir: dir, now: () => day });
  for (let i = 0; i < 10; i++) a.add(id(i));
  a.add('not an id 07700900123');
  a.add(id(3));
  t.equal(a.size, 10, 'only keyed ids, each once');
  a.close();
  const text = readdirSync(ledgerDir(dir))
    .map((f) => readFileSync(join(ledgerDir(dir), f), 'utf8'))
    .join('');
  t.equal(text, Array.from({ length: 10 }, (_, i) => `${id(i)}\n`).join(''));
  const b = openPublishedIds({ stateDir: dir, now: () => day });
  t.ok(b.has(id(0)) && b.has(id(9)), 'read back');
  b.close();
  const small = openPublishedIds({ stateDir: dir, now: () => day, maxIds: 4 });
  t.same(
    [0, 5, 6, 7, 8, 9].map((i) => small.has(id(i))),
    [false, false, true, true, true, true],
    'the newest 4',
  );
  small.add(id(100));
  t.ok(small.has(id(100)) && !small.has(id(6)) && small.size === 4, 'oldest out first');
  small.close();
});

t.test('days older than keepDays are removed at open', async (t) => {
  const dir = tempDir(t, 'ledger');
  mkdirSync(ledgerDir(dir), { recursive: true });
  writeFileSync(join(ledgerDir(dir), 'ids-2026-11-01.log'), `${id(1)}\n`);
  writeFileSync(join(ledgerDir(dir), 'ids-2026-11-22.log'), `${id(2)}\n`);
  const l = openPublishedIds({ stateDir: dir, keepDays: 7, now: () => new Date('2026-11-23T10:00:00Z') });
  t.notOk(l.has(id(1)));
  t.ok(l.has(id(2)));
  t.same(readdirSync(ledgerDir(dir)), ['ids-2026-11-22.log']);
  l.close();
});
