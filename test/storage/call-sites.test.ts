// The stores take their cipher as an optional argument (tests and `audit
// verify --file` read old plaintext copies), so a new call site in src/ that
// forgot it would write plaintext without a word. Every call in src/ must
// pass one: this scan fails when one does not.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const OPENERS = ['openAuditLog', 'openConsentStore', 'openSuppressionStore', 'readOnlySuppressionList'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The text of a call's arguments, from its opening parenthesis to the matching one. */
function argsAt(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  return text.slice(open + 1);
}

t.test('every store opened in src/ is given its cipher', async (t) => {
  const calls: string[] = [];
  const bare: string[] = [];
  for (const f of files(join(ROOT, 'src'))) {
    const text = readFileSync(f, 'utf8');
    for (const name of OPENERS) {
      const re = new RegExp(`(?<!function )\\b${name}\\(`, 'g');
      for (const m of text.matchAll(re)) {
        const where = `${relative(ROOT, f)}:${text.slice(0, m.index).split('\n').length} ${name}`;
        calls.push(where);
        if (!/cipher/i.test(argsAt(text, m.index + name.length))) bare.push(where);
      }
    }
  }
  t.ok(calls.length >= 8, `${calls.length} call sites found (the scan sees them)`);
  t.same(bare, [], 'no store opened without a cipher');
});

t.test('the scan catches a call without a cipher', async (t) => {
  const text = 'const a = openAuditLog(path, { key });\nconst b = openAuditLog(path, { key, cipher: c });';
  const found = [...text.matchAll(/\bopenAuditLog\(/g)].map((m) => /cipher/i.test(argsAt(text, m.index + 12)));
  t.same(found, [false, true]);
});
