// GET/POST/DELETE /v1/tenants/<id>/suppressions: the consent endpoints' auth
// model (a tenant token reaches its own tenant only, operators every tenant),
// zod-validated bodies with 400s that name fields, never a number in an answer.
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAuthenticator } from '../../src/api/auth.js';
import { createLiveFeed } from '../../src/api/live-feed.js';
import { startApiServer } from '../../src/api/server.js';
import { openAuditLog, verifyAuditLog } from '../../src/audit/audit-log.js';
import { createConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import { createSuppressionApi, openSuppressionList } from '../../src/subject/suppression.js';
import { subjectTokens } from '../../src/subject/tokens.js';
import { API_TOKENS, TOKENS } from '../consent/stack.js';
import { needlesForCapture } from '../helpers/ground-truth.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { CAPTURE, config, JANE, memoryLogger, SHARED_CALLER } from './suppression-fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';
import { gatewayHealth } from '../../src/observability/health.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

async function harness(t: { teardown(fn: () => unknown): void }, opts: { lookupsPerHour?: number } = {}) {
  const dir = tempDir(t, 'suppress-api');
  const loaded = config(dir);
  const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const list = openSuppressionList(dir, audit);
  const { log, text } = memoryLogger();
  const server = await startApiServer({
    host: '127.0.0.1',
    port: 0,
    authenticate: createAuthenticator(API_TOKENS),
    registry: createConsentRegistry({ store: openConsentStore(dir), audit, tenants: ['acme', 'globex'] }),
    health: gatewayHealth(),
    feed: createLiveFeed({ maxBufferedBytes: 1 << 20 }),
    log,
    suppressions: createSuppressionApi(list, (id) => loaded.privacy.tenants.get(id), Date.now, audit),
    ...(opts.lookupsPerHour === undefined ? {} : { suppressionLookupsPerHour: opts.lookupsPerHour }),
  });
  t.teardown(() => server.close());
  const responses: string[] = [];
  const call = async (method: string, path: string, o: { token?: string; body?: unknown; raw?: string } = {}) => {
    const headers: Record<string, string> = {};
    if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
    const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    responses.push(text);
    return { status: res.status, body: JSON.parse(text) as any };
  };
  return { dir, loaded, call, responses, logText: text, base: `http://127.0.0.1:${server.port}` };
}

t.test('add by number or token, list, delete: tokens only, audited', async (t) => {
  const h = await harness(t);
  const jane = subjectTokens(h.loaded.privacy.tenants.get('acme')!, JANE)!;
  const added = await h.call('POST', '/v1/tenants/acme/suppressions', {
    token: TOKENS.acme,
    body: { number: '+447700900123' },
  });
  t.equal(added.status, 201);
  // Adding by number answers the id only: a token computed from a number the caller chose would let it test candidates.
  t.same(Object.keys(added.body.suppression), ['id']);
  t.match(added.body, { tenant: 'acme', created: true, suppression: { id: /^sup_[a-z]{12}$/ } });
  const again = await h.call('POST', '/v1/tenants/acme/suppressions', { token: TOKENS.acme, body: { number: JANE } });
  t.equal(again.status, 200, 'the same subscriber in another format: already there');
  t.same([again.body.created, again.body.suppression.id], [false, added.body.suppression.id]);

  const otherToken = subjectTokens(h.loaded.privacy.tenants.get('acme')!, SHARED_CALLER)!.keys[0]!.token;
  const byToken = await h.call('POST', '/v1/tenants/acme/suppressions', {
    token: TOKENS.operator,
    body: { token: otherToken, kid: 'acme-1' },
  });
  t.equal(byToken.status, 201, 'an operator adds by a token seen in a record');
  t.match(byToken.body.suppression, {
    via: 'token',
    addedBy: 'operator:ops',
    tokens: [{ kid: 'acme-1', token: otherToken }],
  });
  const bare = await h.call('POST', '/v1/tenants/acme/suppressions', {
    token: TOKENS.acme,
    body: { token: 'A'.repeat(22) },
  });
  t.equal(bare.body.suppression.coversSigningKey, null, 'a bare token: whether it covers the signing key is unknown');

  const listed = await h.call('GET', '/v1/tenants/acme/suppressions', { token: TOKENS.acme });
  t.equal(listed.status, 200);
  t.equal(listed.body.mode, 'withhold');
  t.same(
    listed.body.suppressions.map((s: { id: string }) => s.id),
    [added.body.suppression.id, byToken.body.suppression.id, bare.body.suppression.id],
  );
  const byNumber = listed.body.suppressions[0];
  t.match(byNumber, { via: 'number', addedBy: 'tenant:acme:acme-admin', coversSigningKey: true, kids: ['acme-1'] });
  t.notOk('tokens' in byNumber, 'an entry added by number is listed without its tokens');
  t.ok('tokens' in listed.body.suppressions[1], 'an entry added by token shows the token the caller gave');
  const one = await h.call('GET', `/v1/tenants/acme/suppressions/${added.body.suppression.id}`, { token: TOKENS.acme });
  t.same(one.body.suppression, byNumber);

  const del = await h.call('DELETE', `/v1/tenants/acme/suppressions/${added.body.suppression.id}`, {
    token: TOKENS.acme,
  });
  t.equal(del.status, 200);
  t.equal(del.body.removed.id, added.body.suppression.id);
  t.equal(
    (await h.call('DELETE', `/v1/tenants/acme/suppressions/${added.body.suppression.id}`, { token: TOKENS.acme }))
      .status,
    404,
    'gone',
  );
  t.equal((await h.call('GET', '/v1/tenants/acme/suppressions', { token: TOKENS.acme })).body.suppressions.length, 2);

  const audit = readFileSync(join(h.dir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.same(
    audit.map((e) => e.action),
    [
      'suppression.add',
      'suppression.lookup',
      'suppression.lookup',
      'suppression.add',
      'suppression.add',
      'suppression.remove',
    ],
    'every add and remove is audited (a repeat add is not a change), and every lookup by number',
  );
  t.equal(audit[0].subject, `suppression:${added.body.suppression.id}`);
  t.same(
    [audit[1].subject, audit[1].detail.created, audit[2].detail.created],
    [`token:${jane.keys[0]!.token}`, true, false],
    'a lookup is audited under the token, never the number',
  );
  t.ok(verifyAuditLog(join(h.dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }).ok);
  const file = readFileSync(join(h.dir, 'suppressions', 'acme.json'));
  t.same(
    scanBuffers(needlesForCapture(CAPTURE), [
      { label: 'responses', data: h.responses.join('\n') },
      { label: 'audit', data: readFileSync(join(h.dir, 'audit.jsonl')) },
      { label: 'file', data: file },
      { label: 'log', data: h.logText() },
    ]),
    [],
    'no number in answers, audit, the list or logs',
  );
  t.notMatch(h.responses.join('\n'), /7700|900123/);
});

t.test('tenant A cannot see or change tenant B; unknown tenants; no token', async (t) => {
  const h = await harness(t);
  const b = await h.call('POST', '/v1/tenants/globex/suppressions', {
    token: TOKENS.globex,
    body: { number: SHARED_CALLER },
  });
  t.equal(b.status, 201);
  const id = b.body.suppression.id as string;
  t.equal((await h.call('GET', '/v1/tenants/globex/suppressions', { token: TOKENS.acme })).status, 403);
  t.equal(
    (await h.call('POST', '/v1/tenants/globex/suppressions', { token: TOKENS.acme, body: { number: JANE } })).status,
    403,
  );
  t.equal((await h.call('DELETE', `/v1/tenants/globex/suppressions/${id}`, { token: TOKENS.acme })).status, 403);
  t.equal((await h.call('GET', `/v1/tenants/globex/suppressions/${id}`, { token: TOKENS.acme })).status, 403);
  t.equal(
    (await h.call('DELETE', `/v1/tenants/acme/suppressions/${id}`, { token: TOKENS.acme })).status,
    404,
    "another tenant's id is not found in one's own list",
  );
  t.equal(
    (await h.call('GET', '/v1/tenants/initech/suppressions', { token: TOKENS.acme })).status,
    403,
    'a tenant token: unknown tenants are forbidden too',
  );
  t.equal(
    (await h.call('GET', '/v1/tenants/initech/suppressions', { token: TOKENS.operator })).status,
    404,
    'an operator: unknown tenant',
  );
  t.equal((await h.call('GET', '/v1/tenants/acme/suppressions')).status, 401);
  t.equal(
    (await h.call('GET', '/v1/tenants/globex/suppressions', { token: TOKENS.globex })).body.suppressions.length,
    1,
    'globex still has its entry',
  );
  t.equal(
    (await h.call('GET', '/v1/tenants/acme/suppressions', { token: TOKENS.acme })).body.suppressions.length,
    0,
    'acme sees none of it',
  );
  t.equal((await h.call('PUT', '/v1/tenants/acme/suppressions', { token: TOKENS.acme, body: {} })).status, 405);
});

t.test('400s name what was wrong and never echo the value', async (t) => {
  const h = await harness(t);
  const post = (body: unknown, raw?: string) =>
    h.call('POST', '/v1/tenants/acme/suppressions', {
      token: TOKENS.acme,
      ...(raw === undefined ? { body } : { raw }),
    });
  const cases: Array<[string, unknown, string]> = [
    ['empty body', {}, 'number'],
    ['both number and token', { number: JANE, token: 'A'.repeat(22) }, 'number'],
    ['a token that is not one', { token: '+447700900123' }, 'token'],
    ['kid without token', { number: JANE, kid: 'acme-1' }, 'kid'],
    // Unknown keys are not named: a key is client text and could be a number.
    ['unknown field', { number: JANE, '+447700900123': true }, '(body)'],
    ['number of the wrong type', { number: 447700900123 }, 'number'],
    ['a withheld number', { number: 'anonymous' }, 'number'],
    ['no possible number', { number: 'x' }, 'number'],
    ["a kid that is not the tenant's", { token: 'A'.repeat(22), kid: 'globex-1' }, 'kid'],
    ['a token that is a phone number', { token: '4477009001234567890123' }, 'token'],
    ['a token of another length than the tenant makes', { token: 'A'.repeat(30) }, 'token'],
  ];
  for (const [what, body, path] of cases) {
    const r = await post(body);
    t.equal(r.status, 400, what);
    t.ok(
      r.body.issues.some((i: { path: string }) => i.path === path),
      `${what}: names ${path}`,
    );
  }
  const notJson = await post(undefined, '{"number": "07700 900123"');
  t.same([notJson.status, notJson.body.issues[0].path], [400, '(body)']);
  t.equal(
    (await h.call('DELETE', '/v1/tenants/acme/suppressions/07700900123', { token: TOKENS.acme })).status,
    400,
    'a number is not an id',
  );
  t.notMatch(h.responses.join('\n'), /7700|900123/, 'no answer repeats the number');
});

t.test('an unreadable list: 503 for the tenant, the other tenant unaffected', async (t) => {
  const h = await harness(t);
  mkdirSync(join(h.dir, 'suppressions'), { recursive: true });
  writeFileSync(join(h.dir, 'suppressions', 'acme.json'), '[]');
  t.equal((await h.call('GET', '/v1/tenants/acme/suppressions', { token: TOKENS.acme })).status, 503);
  t.equal(
    (await h.call('POST', '/v1/tenants/acme/suppressions', { token: TOKENS.acme, body: { number: JANE } })).status,
    503,
  );
  t.equal((await h.call('GET', '/v1/tenants/globex/suppressions', { token: TOKENS.globex })).status, 200);
});

t.test('a kid or token the gateway did not make is a 400 and never stored', async (t) => {
  const h = await harness(t);
  for (const body of [
    { token: 'B'.repeat(22), kid: 'acme-20261101' },
    { token: '4477009001234567890123', kid: 'acme-1' },
  ]) {
    const r = await h.call('POST', '/v1/tenants/acme/suppressions', { token: TOKENS.acme, body });
    t.equal(r.status, 400);
  }
  t.equal((await h.call('GET', '/v1/tenants/acme/suppressions', { token: TOKENS.acme })).body.suppressions.length, 0);
  let stored = '';
  try {
    stored = readFileSync(join(h.dir, 'suppressions', 'acme.json'), 'utf8');
  } catch {
    // never written: nothing stored
  }
  t.notMatch(stored, /20261101|4477009001/, 'neither is in the suppression file');
});

t.test('lookups by number are limited per API token: over the setting, 429 with Retry-After', async (t) => {
  const h = await harness(t, { lookupsPerHour: 3 });
  const numbers = ['+447700900101', '+447700900102', '+447700900103', '+447700900104'];
  const statuses: number[] = [];
  for (const n of numbers) {
    const r = await h.call('POST', '/v1/tenants/acme/suppressions', { token: TOKENS.acme, body: { number: n } });
    statuses.push(r.status);
  }
  t.same(statuses, [201, 201, 201, 429], 'the fourth lookup in the hour is refused');
  const last = await fetch(`${'http://127.0.0.1:'}${new URL(h.base).port}/v1/tenants/acme/suppressions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKENS.acme}`, 'content-type': 'application/json' },
    body: JSON.stringify({ number: '+447700900105' }),
  });
  t.equal(last.status, 429);
  t.ok(Number(last.headers.get('retry-after')) > 0, 'Retry-After says when');
  t.match(await last.text(), /api\.suppressionLookupsPerHour/, 'the answer names the setting');
  t.equal(
    (await h.call('POST', '/v1/tenants/acme/suppressions', { token: TOKENS.acme, body: { token: 'C'.repeat(22) } }))
      .status,
    201,
    'adding by token is not a lookup',
  );
  t.equal(
    (await h.call('POST', '/v1/tenants/acme/suppressions', { token: TOKENS.operator, body: { number: numbers[3] } }))
      .status,
    201,
    'another API token has its own budget',
  );
  const lookups = readFileSync(join(h.dir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"suppression.lookup"')).length;
  t.equal(lookups, 4, 'refused lookups compute nothing and are not audited as lookups');
});
