// Every route: success, validation errors, wrong tenant, bad token, operator role.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyAuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { needlesForCapture } from '../helpers/ground-truth.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { tempDir } from '../helpers/temp-dir.js';
import { apiHarness, TOKENS, type ApiHarness } from './helpers.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

const BAD = 'x'.repeat(48);
const auditEntries = (h: ApiHarness) =>
  readFileSync(join(h.dir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);

t.test('liveness and readiness need no token; metrics are not served here', async (t) => {
  const h = await apiHarness(t);
  t.same(await h.call('GET', '/livez').then((r) => [r.status, r.body]), [200, { status: 'ok' }]);
  t.same(await h.call('GET', '/healthz').then((r) => [r.status, r.body]), [200, { status: 'ok' }], 'the old name');
  t.same(await h.call('GET', '/readyz').then((r) => [r.status, r.body]), [
    200,
    {
      ready: true,
      parts: {
        ami: { ok: true },
        consent: { ok: true },
        'consent-store': { ok: true, required: true },
        rules: { ok: true },
        sink: { ok: true },
      },
    },
  ]);
  h.health.set('ami', { ok: false, reason: 'unreachable' });
  h.health.set('sink', { ok: false, reason: 'spool-full' });
  const away = await h.call('GET', '/readyz');
  t.equal(away.status, 200, 'the PBX away and the spool full: the console still serves');
  t.same(away.body.parts.ami, { ok: false, reason: 'unreachable' }, 'and says what is failing');
  t.same(away.body.parts.sink, { ok: false, reason: 'spool-full' });
  const m = await h.call('GET', '/metrics');
  t.equal(m.status, 404, 'no /metrics on the tenant API port (it counts every tenant)');
  t.match(
    await h.metrics.render(),
    /callveil_api_requests_total\{route="readyz",status="200"\} 2/,
    'the API counts itself',
  );
});

t.test('console page and assets, with a strict content security policy', async (t) => {
  const h = await apiHarness(t);
  for (const [path, type] of [
    ['/', /text\/html/],
    ['/console.js', /javascript/],
    ['/console.css', /text\/css/],
  ] as const) {
    const r = await h.call('GET', path);
    t.equal(r.status, 200, path);
    t.match(r.headers.get('content-type'), type);
    t.match(r.headers.get('content-security-policy'), /script-src 'self'/);
  }
  t.match((await h.call('GET', '/')).body, /<label for="token">/);
});

t.test('authentication: no token, a wrong token, a malformed header -> 401', async (t) => {
  const h = await apiHarness(t);
  for (const path of [
    '/v1/me',
    '/v1/tenants',
    '/v1/tenants/acme/extensions',
    '/v1/tenants/acme/extensions/1001',
    '/v1/tenants/acme/consent-changes',
    '/v1/tenants/acme/consent-history',
    '/v1/tenants/acme/calls',
    '/v1/tenants/acme/activity',
  ]) {
    const none = await h.call('GET', path);
    t.equal(none.status, 401, `${path} without a token`);
    t.equal(none.headers.get('www-authenticate'), 'Bearer');
    t.equal((await h.call('GET', path, { token: BAD })).status, 401, `${path} with a wrong token`);
    t.equal(
      (await h.call('GET', path, { headers: { authorization: `Basic ${TOKENS.acme}` } })).status,
      401,
      `${path} with a non-bearer header`,
    );
    t.equal((await h.call('GET', path, { token: TOKENS.acme.slice(0, 31) })).status, 401, `${path} with a short token`);
  }
  t.equal(
    (await h.call('PUT', '/v1/tenants/acme/extensions/1001', { token: BAD, body: { recording: true } })).status,
    401,
  );
  t.equal(
    (
      await h.call('PATCH', '/v1/tenants/acme/extensions', {
        token: BAD,
        body: { extensions: [{ extension: '1001', recording: true }] },
      })
    ).status,
    401,
  );
  t.equal(h.registry.isOn('acme', '1001'), false, 'nothing changed');
});

t.test('/v1/me and /v1/tenants', async (t) => {
  const h = await apiHarness(t);
  t.same((await h.call('GET', '/v1/me', { token: TOKENS.acme })).body, {
    role: 'tenant',
    tenant: 'acme',
    tenants: ['acme'],
  });
  t.same((await h.call('GET', '/v1/me', { token: TOKENS.operator })).body, {
    role: 'operator',
    tenant: null,
    tenants: ['acme', 'globex'],
  });
  t.same(await h.call('GET', '/v1/tenants', { token: TOKENS.operator }).then((r) => [r.status, r.body]), [
    200,
    { tenants: ['acme', 'globex'] },
  ]);
  t.equal((await h.call('GET', '/v1/tenants', { token: TOKENS.acme })).status, 403, 'a tenant may not list tenants');
  t.equal((await h.call('POST', '/v1/me', { token: TOKENS.acme })).status, 405);
});

t.test('list extensions: own tenant, wrong tenant, operator', async (t) => {
  const h = await apiHarness(t);
  const own = await h.call('GET', '/v1/tenants/acme/extensions', { token: TOKENS.acme });
  t.equal(own.status, 200);
  t.same(own.body, {
    tenant: 'acme',
    extensions: [
      { extension: '1001', recording: false, changedBy: null, changedAt: null },
      { extension: '1002', recording: false, changedBy: null, changedAt: null },
    ],
  });
  t.equal(
    (await h.call('GET', '/v1/tenants/globex/extensions', { token: TOKENS.acme })).status,
    403,
    'tenant A cannot read tenant B',
  );
  t.equal(
    (await h.call('GET', '/v1/tenants/nosuch/extensions', { token: TOKENS.acme })).status,
    403,
    'nor learn whether a tenant exists',
  );
  t.equal((await h.call('GET', '/v1/tenants/ACME!/extensions', { token: TOKENS.acme })).status, 403);
  t.same(
    (await h.call('GET', '/v1/tenants/globex/extensions', { token: TOKENS.operator })).body.extensions.map(
      (e: { extension: string }) => e.extension,
    ),
    ['1007'],
    'operator reads any tenant',
  );
  t.equal(
    (await h.call('GET', '/v1/tenants/nosuch/extensions', { token: TOKENS.operator })).status,
    404,
    'operator: unknown tenant is 404',
  );
  t.equal((await h.call('DELETE', '/v1/tenants/acme/extensions', { token: TOKENS.acme })).status, 405);
  t.equal((await h.call('GET', '/v1/tenants/acme/nothing', { token: TOKENS.acme })).status, 404);
});

t.test('set one extension: success, validation, wrong tenant, operator', async (t) => {
  const h = await apiHarness(t);
  const ok = await h.call('PUT', '/v1/tenants/acme/extensions/1001', { token: TOKENS.acme, body: { recording: true } });
  t.equal(ok.status, 200);
  t.match(ok.body, {
    tenant: 'acme',
    extension: '1001',
    recording: true,
    changedBy: 'tenant:acme:acme-admin',
    changedAt: /^\d{4}-/,
  });
  t.equal(h.registry.isOn('acme', '1001'), true);
  t.match((await h.call('GET', '/v1/tenants/acme/extensions/1001', { token: TOKENS.acme })).body, {
    extension: '1001',
    recording: true,
  });
  t.match(
    (await h.call('GET', '/v1/tenants/acme/extensions/1099', { token: TOKENS.acme })).body,
    { extension: '1099', recording: false, changedBy: null },
    'an unknown extension is off',
  );

  const invalid: Array<[string, { body?: unknown; raw?: string }, unknown]> = [
    ['recording not a boolean', { body: { recording: 'yes' } }, [{ path: 'recording', message: 'expected boolean' }]],
    ['recording missing', { body: {} }, [{ path: 'recording', message: 'expected boolean' }]],
    ['an unknown field', { body: { recording: true, note: 'x' } }, [{ path: '(body)', message: 'unknown field' }]],
    ['not JSON', { raw: '{recording:' }, [{ path: '(body)', message: 'valid JSON' }]],
    ['an array', { body: [true] }, [{ path: '(body)', message: 'expected object' }]],
  ];
  for (const [what, o, issues] of invalid) {
    const r = await h.call('PUT', '/v1/tenants/acme/extensions/1002', { token: TOKENS.acme, ...o });
    t.same([r.status, r.body], [400, { error: 'invalid request', issues }], what);
  }
  for (const ext of ['12345678', 'abc', '10%2F01', '07700900123']) {
    const r = await h.call('PUT', `/v1/tenants/acme/extensions/${ext}`, {
      token: TOKENS.acme,
      body: { recording: true },
    });
    t.same(
      [r.status, r.body.issues],
      [400, [{ path: 'extension', message: 'an extension of 1-6 digits' }]],
      `extension ${ext}`,
    );
  }
  const big = await h.call('PUT', '/v1/tenants/acme/extensions/1002', {
    token: TOKENS.acme,
    raw: JSON.stringify({ recording: true, pad: 'x'.repeat(70_000) }),
  });
  t.equal(big.status, 413, 'body over 64 KiB');

  t.equal(
    (await h.call('PUT', '/v1/tenants/globex/extensions/1007', { token: TOKENS.acme, body: { recording: true } }))
      .status,
    403,
    'tenant A cannot change tenant B',
  );
  t.equal(h.registry.isOn('globex', '1007'), false);
  const op = await h.call('PUT', '/v1/tenants/globex/extensions/1007', {
    token: TOKENS.operator,
    body: { recording: true },
  });
  t.match(
    [op.status, op.body],
    [200, { tenant: 'globex', extension: '1007', recording: true, changedBy: 'operator:ops' }],
    'operator changes any tenant',
  );
  t.equal(
    (await h.call('PUT', '/v1/tenants/nosuch/extensions/1007', { token: TOKENS.operator, body: { recording: true } }))
      .status,
    404,
  );
  t.equal(
    (await h.call('POST', '/v1/tenants/acme/extensions/1001', { token: TOKENS.acme, body: { recording: true } }))
      .status,
    405,
  );

  const entries = auditEntries(h);
  t.same(
    entries.map((e) => [e.actor, e.action, e.tenant, e.subject, e.detail]),
    [
      ['tenant:acme:acme-admin', 'consent.set', 'acme', '1001', { recording: true, previous: false, txn: 1 }],
      ['operator:ops', 'consent.set', 'globex', '1007', { recording: true, previous: false, txn: 2 }],
    ],
    'every change, and only the changes, audited',
  );
  t.ok(verifyAuditLog(join(h.dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }).ok);
});

t.test('set many: success, validation, wrong tenant, operator', async (t) => {
  const h = await apiHarness(t);
  const body = {
    extensions: [
      { extension: '1001', recording: true },
      { extension: '1005', recording: true },
      { extension: '1002', recording: false },
    ],
  };
  const ok = await h.call('PATCH', '/v1/tenants/acme/extensions', { token: TOKENS.acme, body });
  t.equal(ok.status, 200);
  t.same(
    ok.body.updated.map((u: { extension: string; recording: boolean }) => [u.extension, u.recording]),
    [
      ['1001', true],
      ['1005', true],
      ['1002', false],
    ],
  );
  t.same(
    h.registry.list('acme').map((e) => [e.extension, e.recording]),
    [
      ['1001', true],
      ['1002', false],
      ['1005', true],
    ],
  );

  const invalid: Array<[string, unknown, string]> = [
    ['empty list', { extensions: [] }, 'extensions'],
    [
      'duplicate extension',
      {
        extensions: [
          { extension: '1001', recording: true },
          { extension: '1001', recording: false },
        ],
      },
      'extensions',
    ],
    ['bad extension', { extensions: [{ extension: '+447700900123', recording: true }] }, 'extensions.0.extension'],
    ['missing recording', { extensions: [{ extension: '1001' }] }, 'extensions.0.recording'],
    [
      'too many',
      { extensions: Array.from({ length: 1001 }, (_, i) => ({ extension: String(i), recording: true })) },
      'extensions',
    ],
  ];
  for (const [what, b, path] of invalid) {
    const r = await h.call('PATCH', '/v1/tenants/acme/extensions', { token: TOKENS.acme, body: b });
    t.equal(r.status, 400, what);
    t.equal(r.body.issues[0].path, path, `${what}: names ${path}`);
  }
  t.notMatch(JSON.stringify(h.responses), /7700900123/, 'a value the client sent is not echoed');
  t.equal(
    (await h.call('PATCH', '/v1/tenants/globex/extensions', { token: TOKENS.acme, body })).status,
    403,
    'wrong tenant',
  );
  t.equal((await h.call('PATCH', '/v1/tenants/globex/extensions', { token: BAD, body })).status, 401, 'bad token');
  t.equal(
    (await h.call('PATCH', '/v1/tenants/globex/extensions', { token: TOKENS.operator, body })).status,
    200,
    'operator',
  );
  t.equal(h.registry.isOn('globex', '1005'), true);
  t.equal(auditEntries(h).length, 6, 'one audit entry per extension changed');
});

t.test('recent consent changes: newest first, scoped, limit validated', async (t) => {
  const h = await apiHarness(t);
  await h.call('PUT', '/v1/tenants/acme/extensions/1001', { token: TOKENS.acme, body: { recording: true } });
  await new Promise((r) => setTimeout(r, 5));
  await h.call('PUT', '/v1/tenants/acme/extensions/1002', { token: TOKENS.operator, body: { recording: true } });
  const r = await h.call('GET', '/v1/tenants/acme/consent-changes?limit=10', { token: TOKENS.acme });
  t.equal(r.status, 200);
  t.same(
    r.body.changes.map((c: { extension: string; changedBy: string }) => [c.extension, c.changedBy]),
    [
      ['1002', 'operator:ops'],
      ['1001', 'tenant:acme:acme-admin'],
    ],
  );
  t.equal((await h.call('GET', '/v1/tenants/acme/consent-changes?limit=0', { token: TOKENS.acme })).status, 400);
  t.equal((await h.call('GET', '/v1/tenants/acme/consent-changes?limit=x', { token: TOKENS.acme })).status, 400);
  t.equal((await h.call('GET', '/v1/tenants/globex/consent-changes', { token: TOKENS.acme })).status, 403);
  t.same((await h.call('GET', '/v1/tenants/globex/consent-changes', { token: TOKENS.operator })).body, {
    tenant: 'globex',
    changes: [],
  });
  t.equal((await h.call('GET', '/v1/tenants/globex/consent-changes', { token: BAD })).status, 401);
});

t.test('consent history: every change, newest first, per extension, scoped', async (t) => {
  const h = await apiHarness(t);
  for (const recording of [true, false, true])
    await h.call('PUT', '/v1/tenants/acme/extensions/1003', { token: TOKENS.acme, body: { recording } });
  await h.call('PUT', '/v1/tenants/acme/extensions/1001', { token: TOKENS.operator, body: { recording: true } });
  const r = await h.call('GET', '/v1/tenants/acme/consent-history?extension=1003', { token: TOKENS.acme });
  t.equal(r.status, 200);
  t.same(
    r.body.changes.map((c: any) => [c.extension, c.recording, c.previous, c.changedBy]),
    [
      ['1003', true, false, 'tenant:acme:acme-admin'],
      ['1003', false, true, 'tenant:acme:acme-admin'],
      ['1003', true, false, 'tenant:acme:acme-admin'],
    ],
    'on -> off -> on: three entries, newest first',
  );
  const all = await h.call('GET', '/v1/tenants/acme/consent-history?limit=2', { token: TOKENS.acme });
  t.same(
    all.body.changes.map((c: any) => c.extension),
    ['1001', '1003'],
    'every extension, limited',
  );
  t.equal(
    (await h.call('GET', '/v1/tenants/acme/consent-history?extension=12345678', { token: TOKENS.acme })).status,
    400,
  );
  t.equal((await h.call('GET', '/v1/tenants/acme/consent-history?limit=0', { token: TOKENS.acme })).status, 400);
  t.equal((await h.call('GET', '/v1/tenants/acme/consent-history?other=1', { token: TOKENS.acme })).status, 400);
  t.equal((await h.call('GET', '/v1/tenants/globex/consent-history', { token: TOKENS.acme })).status, 403);
  t.same((await h.call('GET', '/v1/tenants/globex/consent-history', { token: TOKENS.operator })).body, {
    tenant: 'globex',
    changes: [],
  });
});

t.test('calls and activity: the call log, scoped by tenant', async (t) => {
  const h = await apiHarness(t);
  const party = (extension: string) => ({
    kind: 'extension' as const,
    extension,
    token: null,
    country: null,
    callingCode: null,
    numberType: null,
  });
  const record = (id: string, tenant: string, startedAt: string) => ({
    schemaVersion: 1 as const,
    id,
    tenant,
    keyId: 'k1',
    callId: id,
    direction: 'internal' as const,
    startedAt,
    answeredAt: startedAt,
    endedAt: startedAt,
    ringSec: 1,
    talkSec: 5,
    outcome: 'answered' as const,
    caller: party('1001'),
    firstCalled: party('1002'),
    answeredBy: party('1002'),
    queue: null,
    transfers: [],
    recording: 'blocked' as const,
    legIds: [id],
    complete: true,
    source: 'ami' as const,
  });
  h.calls.noteRecording({ tenant: 'acme', callId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab', reason: 'no-consent' });
  h.calls.add(record('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab', 'acme', '2026-11-23T07:22:00.000Z'));
  h.calls.add(record('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac', 'acme', '2026-11-23T08:22:00.000Z'));
  h.calls.add(record('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaad', 'globex', '2026-11-23T08:22:00.000Z'));
  const r = await h.call('GET', '/v1/tenants/acme/calls', { token: TOKENS.acme });
  t.equal(r.status, 200);
  t.same(
    r.body.calls.map((c: any) => [c.record.id.slice(-1), c.recordingReason, c.extensions]),
    [
      ['c', null, ['1001', '1002']],
      ['b', 'no-consent', ['1001', '1002']],
    ],
    "newest first, acme's only, the enforcer's reason joined",
  );
  t.equal(r.body.extensionMethod, 'keep');
  t.equal((await h.call('GET', '/v1/tenants/acme/calls?limit=1', { token: TOKENS.acme })).body.calls.length, 1);
  t.equal((await h.call('GET', '/v1/tenants/acme/calls?limit=501', { token: TOKENS.acme })).status, 400);
  t.equal((await h.call('GET', '/v1/tenants/globex/calls', { token: TOKENS.acme })).status, 403);
  const a = await h.call('GET', '/v1/tenants/acme/activity', { token: TOKENS.acme });
  t.match(a.body, {
    tenant: 'acme',
    timeZone: 'UTC',
    extensions: [
      { extension: '1001', calls: 2, answered: 0, blocked: 2 },
      { extension: '1002', calls: 2, answered: 2, blocked: 2 },
    ],
    days: [{ date: '2026-11-23' }],
  });
  t.match(a.body.days[0].hours[7], { hour: 7, answered: 1, blocked: 1 });
  t.match(a.body.days[0].hours[8], { hour: 8, answered: 1, blocked: 1 });
  t.equal((await h.call('POST', '/v1/tenants/acme/activity', { token: TOKENS.acme, body: {} })).status, 405);
});

t.test('an unreadable consent store: changes get 503, readiness fails', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const dir = tempDir(t, 'api-bad');
  writeFileSync(join(dir, 'consent.json'), 'not json');
  const h = await apiHarness(t, { dir });
  t.same(
    await h
      .call('PUT', '/v1/tenants/acme/extensions/1001', { token: TOKENS.acme, body: { recording: true } })
      .then((r) => [r.status, r.body]),
    [503, { error: 'consent store unavailable' }],
  );
  const ready = await h.call('GET', '/readyz');
  t.equal(ready.status, 503, 'the console cannot serve consent without its store');
  t.same(ready.body.parts['consent-store'], { ok: false, reason: 'unreadable', required: true });
  t.equal(ready.body.ready, false);
  t.ok(
    (await h.call('GET', '/v1/tenants/acme/extensions', { token: TOKENS.acme })).body.extensions.every(
      (e: { recording: boolean }) => !e.recording,
    ),
    'everything reads as off',
  );
});

t.test('nothing the API wrote holds a fixture number', async (t) => {
  const h = await apiHarness(t);
  await h.call('PATCH', '/v1/tenants/acme/extensions', {
    token: TOKENS.acme,
    body: { extensions: [{ extension: '1001', recording: true }] },
  });
  await h.call('PUT', '/v1/tenants/acme/extensions/07700900123', { token: TOKENS.acme, body: { recording: true } });
  h.responses.push(await h.metrics.render());
  const leaks = scanBuffers(needlesForCapture('recording-consent'), [
    { label: 'responses', data: h.responses.join('\n') },
    { label: 'audit', data: readFileSync(join(h.dir, 'audit.jsonl')) },
    { label: 'log', data: h.logText() },
  ]);
  t.same(leaks, []);
});
