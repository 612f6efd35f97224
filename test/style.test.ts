// The house style, checked with the suite so CI runs it: prettier formats,
// typescript-eslint lints (`npm run format` fixes most of what this reports).
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import t from 'tap';

const root = resolve(import.meta.dirname, '..');
const bin = (name: string) => resolve(root, 'node_modules', '.bin', name);

function run(cmd: string, args: string[]): { ok: boolean; output: string } {
  try {
    execFileSync(bin(cmd), args, { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    return { ok: true, output: '' };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}`.slice(0, 4000) };
  }
}

t.test('prettier: every source file is formatted', async (t) => {
  const r = run('prettier', ['--check', '.']);
  t.ok(r.ok, r.output || 'formatted');
});

t.test('eslint: no lint errors', async (t) => {
  const r = run('eslint', ['-c', '.eslint.config.mjs', '.']);
  t.ok(r.ok, r.output || 'clean');
});
