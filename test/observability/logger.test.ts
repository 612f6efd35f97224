// JSON lines for collectors; pino-pretty for a person at a terminal; the same fields either way.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger.js';

const DIST_LOGGER = resolve(import.meta.dirname, '..', '..', 'dist', 'observability', 'logger.js');

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  return {
    stream: new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) }),
    text: () => chunks.join(''),
  };
}

t.test('a stream that is not a terminal gets JSON, one object a line', async (t) => {
  const s = sink();
  createLogger('info', s.stream).child({ component: 'ami' }).warn({ attempt: 2, delayMs: 5000 }, 'ami login rejected');
  const lines = s.text().trim().split('\n');
  t.equal(lines.length, 1);
  const o = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.match(o, { level: 40, svc: 'callveil', component: 'ami', attempt: 2, delayMs: 5000, msg: 'ami login rejected' });
});

t.test('pretty: one human line with the same fields', async (t) => {
  const s = sink();
  createLogger('info', s.stream, { pretty: true })
    .child({ component: 'ami' })
    .warn({ attempt: 2, code: 'GW_AMI_AUTH', delayMs: 5000 }, 'ami login rejected');
  const text = s.text();
  t.equal(text.trim().split('\n').length, 1, 'one line');
  t.match(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: ami login rejected /);
  t.match(text, '"component":"ami"');
  t.match(text, '"attempt":2');
  t.match(text, '"delayMs":5000');
  t.notMatch(text, /^\{/, 'not JSON');
  t.notOk(text.includes('\u001b['), 'no colour codes outside a terminal');
});

t.test('by default: pretty when stderr is a terminal, JSON when it is not', async (t) => {
  // The built logger in a child process, once under a pseudo-terminal (util-linux `script`) and once piped.
  const code = `import(${JSON.stringify(DIST_LOGGER)}).then((m) => m.createLogger('info').warn({ attempt: 1 }, 'ami login rejected'))`;
  const cmd = `${JSON.stringify(process.execPath)} -e ${JSON.stringify(code)}`;
  const onTty = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 20_000 });
  if (onTty.error) throw new Error(`util-linux script is needed for this test: ${onTty.error.message}`);
  t.match(onTty.stdout, /WARN.*ami login rejected/, 'a terminal: the human form');
  t.notMatch(onTty.stdout, /"msg":/);
  const piped = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 20_000 });
  t.match(JSON.parse(piped.stderr.trim()), { level: 40, attempt: 1, msg: 'ami login rejected' }, 'a pipe: JSON');
});
