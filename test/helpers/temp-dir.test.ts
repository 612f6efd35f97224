// Temp dirs in tests: made by tempDir() and gone when their test ends, and no
// test makes one any other way (a bare mkdtemp is how ~100 dirs a run piled up).
import t from 'tap';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { tempDir } from './temp-dir.js';

const TEST_ROOT = resolve(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    // Fixtures are data; benchmarks are not tests (they run outside tap and remove their dir in a finally).
    if (statSync(path).isDirectory()) return name === 'fixtures' || name === 'bench' ? [] : sources(path);
    return /\.[cm]?[jt]s$/.test(name) ? [path] : [];
  });
}

t.test('no test file calls mkdtemp itself: every temp dir comes from tempDir()', async (t) => {
  // The helper itself, and this file (which names the call it looks for).
  const exempt = [join(TEST_ROOT, 'helpers', 'temp-dir.ts'), join(TEST_ROOT, 'helpers', 'temp-dir.test.ts')];
  const files = sources(TEST_ROOT).filter((f) => !exempt.includes(f));
  t.ok(files.length > 50, `scanned ${files.length} files`);
  const offenders = files.filter((f) => /\bmkdtemp(?:Sync)?\b/.test(readFileSync(f, 'utf8')));
  t.same(
    offenders.map((f) => relative(TEST_ROOT, f)),
    [],
    'use tempDir(t, prefix) from test/helpers/temp-dir.ts',
  );
});

t.test('a temp dir lives as long as its test, contents and all', async (t) => {
  let dir = '';
  await t.test('inner', async (t) => {
    dir = tempDir(t, 'selftest');
    writeFileSync(join(dir, 'file'), 'x');
    t.ok(existsSync(join(dir, 'file')));
    t.match(basename(dir), /^callveil-selftest-.{6}$/);
    t.equal(resolve(dir, '..'), resolve(tmpdir()));
  });
  t.equal(existsSync(dir), false, 'removed when the test that made it ended');
});
