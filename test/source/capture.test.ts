import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { GatewayError } from '../../src/errors.js';
import { readCapture, splitCapture } from '../../src/source/capture.js';
import { tempDir } from '../helpers/temp-dir.js';

const FIXTURES = new URL('../fixtures/ami/', import.meta.url);
const LOGIN_OK = 'Response: Success\r\nActionID: login-1\r\nMessage: Authentication accepted\r\n\r\n';
const EVENT = 'Event: FullyBooted\r\nPrivilege: system,all\r\n\r\n';
const SECRET_LINE = 'CallerIDNum: 07700900123\r\n';

t.test('reads raw and gzipped captures', async (t) => {
  const dir = tempDir(t, 'capture');
  const bytes = Buffer.from(`Asterisk Call Manager/9.0.0\r\n${LOGIN_OK}${EVENT}`);
  await writeFile(join(dir, 'a.ami'), bytes);
  await writeFile(join(dir, 'a.ami.gz'), gzipSync(bytes));
  t.same(await readCapture(join(dir, 'a.ami')), bytes);
  t.same(await readCapture(join(dir, 'a.ami.gz')), bytes);
});

t.test('unreadable captures: GW_CAPTURE_UNREADABLE naming the file, never its content', async (t) => {
  const dir = tempDir(t, 'capture');
  const notGzip = join(dir, 'fake.ami.gz');
  await writeFile(notGzip, `Event: X\r\n${SECRET_LINE}\r\n`);
  const corrupt = join(dir, 'corrupt.ami.gz');
  const gz = gzipSync(Buffer.from(`Event: X\r\n${SECRET_LINE}\r\n`.repeat(50)));
  await writeFile(corrupt, gz.subarray(0, gz.length - 20));
  for (const path of [join(dir, 'missing.ami'), notGzip, corrupt, dir]) {
    const err = await readCapture(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof GatewayError, path);
    const ge = err as GatewayError;
    t.equal(ge.code, 'GW_CAPTURE_UNREADABLE');
    t.match(ge.message, path);
    t.notMatch(ge.message, '07700900123');
  }
});

t.test("splitCapture separates greeting and the recorder's login", async (t) => {
  const s = splitCapture(Buffer.from(`Asterisk Call Manager/9.0.0\r\n${LOGIN_OK}${EVENT}`));
  t.equal(s.greeting.toString(), 'Asterisk Call Manager/9.0.0\r\n');
  t.equal(s.loginResponse?.toString(), LOGIN_OK);
  t.equal(s.body.toString(), EVENT);

  const noLogin = splitCapture(Buffer.from(`Asterisk Call Manager/9.0.0\r\n${EVENT}`));
  t.equal(noLogin.loginResponse, null, 'first message is not a login response');
  t.equal(noLogin.body.toString(), EVENT);

  const failed = splitCapture(
    Buffer.from(`Asterisk Call Manager/9.0.0\r\nResponse: Error\r\nMessage: Authentication failed\r\n\r\n`),
  );
  t.equal(failed.loginResponse, null);

  const bare = splitCapture(Buffer.from(EVENT));
  t.equal(bare.greeting.length, 0);
  t.equal(bare.body.toString(), EVENT);

  const empty = splitCapture(Buffer.alloc(0));
  t.same([empty.greeting.length, empty.loginResponse, empty.body.length], [0, null, 0]);
});

t.test('real capture: greeting + login + body is the whole file', async (t) => {
  const buf = await readCapture(new URL('basic-internal.ami.gz', FIXTURES).pathname);
  const s = splitCapture(buf);
  t.equal(s.greeting.toString(), 'Asterisk Call Manager/9.0.0\r\n');
  t.match(
    s.loginResponse?.toString(),
    /^Response: Success\r\nActionID: login-1\r\nMessage: Authentication accepted\r\n\r\n$/,
  );
  t.ok(s.body.toString('latin1').startsWith('Event: FullyBooted\r\n'));
  t.ok(
    s.body
      .toString('latin1')
      .endsWith('Response: Goodbye\r\nActionID: logoff-1\r\nMessage: Thanks for all the fish.\r\n\r\n'),
  );
  t.equal(s.greeting.length + (s.loginResponse?.length ?? 0) + s.body.length, buf.length);
});
