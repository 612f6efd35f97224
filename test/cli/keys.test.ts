// `callveil keys generate`: random key material, and an audit key added to a keys file once.
import t from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { runInProcess } from '../../src/cli/cli-command.js';
import { registerKeys } from '../../src/cli/commands/keys.js';
import { keyMaterialProblem, weakKeyProblem } from '../../src/privacy/keys.js';
import { tempDir } from '../helpers/temp-dir.js';

async function keys(
  args: string[],
): Promise<{ code: number; out: string; error?: { code?: string; message: string } }> {
  let out = '';
  const io = { stdout: (s: string) => (out += s), stderr: () => undefined, stderrIsTty: false };
  try {
    return { code: await runInProcess([registerKeys], ['keys', 'generate', ...args], { env: {}, io }), out };
  } catch (err) {
    return { code: 1, out, error: err as { code?: string; message: string } };
  }
}

t.test('generate prints 32 fresh random bytes as hex, usable as any key', async (t) => {
  const a = await keys(['audit']);
  const b = await keys(['pseudonym']);
  t.equal(a.code, 0);
  t.match(a.out, /^[0-9a-f]{64}\n$/);
  t.not(a.out, b.out, 'fresh each time');
  t.equal(keyMaterialProblem(a.out), undefined);
  t.equal(weakKeyProblem(Buffer.from(a.out.trim(), 'hex')), undefined);
});

t.test('--keys-file adds the audit key once, mode 0600, without printing it', async (t) => {
  const dir = tempDir(t, 'keys-cli');
  const file = join(dir, 'keys.yaml');
  writeFileSync(file, '# keys\nkeySets:\n  acme: []\n', { mode: 0o644 });
  const r = await keys(['audit', '--keys-file', file]);
  t.equal(r.code, 0);
  t.equal(r.out, `auditKey added to ${file} (the key itself is not printed)\n`);
  const doc = parseDocument(readFileSync(file, 'utf8')).toJS() as { auditKey: { secret: string } };
  t.match(doc.auditKey.secret, /^[0-9a-f]{64}$/);
  t.match(readFileSync(file, 'utf8'), /^# keys\n/, 'comments survive');
  t.equal(statSync(file).mode & 0o777, 0o600);
  const again = await keys(['audit', '--keys-file', file]);
  t.match(again.error, { code: 'GW_USAGE', message: /already has auditKey/ }, 'never replaced');
  t.match(await keys(['id', '--keys-file', file]), { error: { code: 'GW_USAGE' } });
});
