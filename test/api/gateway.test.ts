// startGateway wires the consent enforcer and, with api.enabled, the API:
// the real composition root against the test AMI server.
import { TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import { startGateway } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { readCapture } from '../helpers/ground-truth.js';
import { KEY_ACME, KEY_GLOBEX } from '../helpers/configs.js';
import { API_TOKENS, TOKENS } from '../consent/stack.js';
import { tempDir } from '../helpers/temp-dir.js';
import { PROBE_CHANNEL } from '../../src/consent/stop-probe.js';

t.test('the live gateway enforces consent and serves the API', async (t) => {
  const dir = tempDir(t, 'gw');
  const ami = await startReplayServer({
    capture: readCapture('recording-consent'),
    username: 'gw',
    secret: 'pw',
    holdOpen: true,
    chunking: 'recorded',
  });
  t.teardown(() => ami.close());
  const loaded = parseConfig(
    {
      ami: { host: '127.0.0.1', port: ami.port, username: 'gw', secret: 'pw' },
      tenants: [
        { id: 'acme', keyId: 'acme-1', keyEnv: 'K_ACME', match: { accountCodes: ['acme'] } },
        {
          id: 'globex',
          keyId: 'globex-1',
          keyEnv: 'K_GLOBEX',
          defaultRegion: 'US',
          match: { accountCodes: ['globex'] },
        },
      ],
      defaultTenant: 'acme',
      sink: { type: 'jsonl', path: join(dir, 'out.jsonl') },
      storage: { dir },
      api: { enabled: true, port: 0, tokens: API_TOKENS },
      metrics: { port: 0 },
      consent: { extensions: { acme: ['1001'] } },
    },
    {
      K_ACME: KEY_ACME,
      K_GLOBEX: KEY_GLOBEX,
      CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX,
      CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX,
    },
    '(test)',
  );
  const logs: Buffer[] = [];
  const log = createLogger('info', new Writable({ write: (c, _e, cb) => (logs.push(Buffer.from(c)), cb()) }));
  const gw = await startGateway(loaded, {}, log);
  t.teardown(() => gw.stop());
  const base = `http://127.0.0.1:${gw.api!.port}`;
  const me = await fetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${TOKENS.acme}` } });
  t.same(await me.json(), { role: 'tenant', tenant: 'acme', tenants: ['acme'] });
  t.same(
    await fetch(`${base}/v1/tenants/acme/extensions`, { headers: { authorization: `Bearer ${TOKENS.acme}` } }).then(
      (r) => r.json(),
    ),
    {
      tenant: 'acme',
      extensions: [{ extension: '1001', recording: false, changedBy: null, changedAt: null }],
    },
  );
  await ami.done;
  const deadline = Date.now() + 5000;
  while (
    ami.actionsReceived().filter((a) => /^stop/i.test(a.action ?? '') && a.channel !== PROBE_CHANNEL).length < 17 &&
    Date.now() < deadline
  )
    await new Promise((r) => setTimeout(r, 20));
  t.equal(
    ami.actionsReceived().filter((a) => /^stop/i.test(a.action ?? '') && a.channel !== PROBE_CHANNEL).length,
    17,
    'no consent configured: every recording stopped',
  );
  const ready = await fetch(`${base}/readyz`);
  t.equal(ready.status, 200);
  // Metrics count every tenant: on their own listener, never on the tenant API port.
  t.equal((await fetch(`${base}/metrics`)).status, 404, 'no /metrics on the API port');
  const metricsBase = `http://127.0.0.1:${gw.metricsServer!.port}`;
  t.match(
    await fetch(`${metricsBase}/metrics`).then((r) => r.text()),
    /callveil_recordings_total\{outcome="blocked"\} 17/,
  );
  t.equal((await fetch(`${metricsBase}/readyz`)).status, 200, 'readiness there too');
  await gw.stop();
  t.equal(
    readFileSync(join(dir, 'out.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .filter((l) => JSON.parse(l).recording === 'blocked').length > 0,
    true,
    'records marked blocked',
  );
  t.notMatch(Buffer.concat(logs).toString(), /7700900/, 'no number in the logs');
});

t.test('an extension added in the console never makes a caller internal', async (t) => {
  const { openConsentStore } = await import('../../src/consent/store.js');
  const { rulesConfig } = await import('../helpers/configs.js');
  const dir = tempDir(t, 'gw-add');
  // 4001 calls in from the trunk (a subscriber with a short number); a tenant admin added "4001" as an extension.
  await openConsentStore(dir).save({
    acme: { '4001': { recording: true, changedBy: 'tenant:acme:acme-admin', changedAt: new Date().toISOString() } },
  });
  const ami = await startReplayServer({
    capture: readCapture('inbound-pstn'),
    username: 'gw',
    secret: 'pw',
    holdOpen: true,
    chunking: 'recorded',
  });
  t.teardown(() => ami.close());
  const loaded = rulesConfig(dir, undefined, {
    ami: { host: '127.0.0.1', port: ami.port, username: 'gw', secret: 'pw' },
    defaultTenant: 'acme',
    sink: { type: 'jsonl', path: join(dir, 'out.jsonl') },
    storage: { dir },
    api: { enabled: true, port: 0, tokens: API_TOKENS },
    metrics: { enabled: false },
  });
  const log = createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }));
  const gw = await startGateway(loaded, {}, log);
  t.teardown(() => gw.stop());
  const calls: unknown[] = [];
  gw.pipeline.onCallPublished((r) => calls.push(r));
  await ami.done;
  await new Promise((r) => setTimeout(r, 6500));
  const base = `http://127.0.0.1:${gw.api!.port}`;
  const get = (p: string) =>
    fetch(base + p, { headers: { authorization: `Bearer ${TOKENS.acme}` } }).then((r) => r.json());
  t.match(
    (await get('/v1/tenants/acme/extensions')).extensions.find((e: { extension: string }) => e.extension === '4001'),
    { recording: true },
    'the console lists the added extension',
  );
  const listed = (await get('/v1/tenants/acme/calls')).calls as Array<{ extensions: string[]; record: any }>;
  t.ok(listed.length > 0, 'calls listed');
  t.ok(
    listed.every((c) => !c.extensions.includes('4001')),
    'no call lists 4001 among its extensions',
  );
  t.notMatch(JSON.stringify(calls), /"extension":"4001"/, 'no call record holds 4001 as a kept extension');
  await gw.stop();
  t.notMatch(readFileSync(join(dir, 'out.jsonl'), 'utf8'), /"extension":"4001"/, 'nor any leg record');
});
