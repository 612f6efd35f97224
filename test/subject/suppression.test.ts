// Restrict and object on a real capture: a subscriber suppressed mid-stream
// through the tenant API is withheld from the very next record, at the test
// Kafka broker and on the live feed; redact mode publishes their records with
// them fully redacted; an unreadable list withholds that tenant only.
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { createAuthenticator } from '../../src/api/auth.js';
import { createLiveFeed } from '../../src/api/live-feed.js';
import { connectLiveFeed } from '../../src/api/live-sources.js';
import { startApiServer } from '../../src/api/server.js';
import { openAuditLog, verifyAuditLog } from '../../src/audit/audit-log.js';
import { createConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { buildPipeline, openSink } from '../../src/main.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
import type { RecordSink } from '../../src/sink/sink.js';
import { createSuppressionApi, createSuppressionList, openSuppressionList } from '../../src/subject/suppression.js';
import { openSuppressionStore } from '../../src/subject/suppression-store.js';
import { subjectTokens } from '../../src/subject/tokens.js';
import { API_TOKENS, TOKENS } from '../consent/stack.js';
import { needlesForCapture } from '../helpers/ground-truth.js';
import { RULES_DIR, rulesConfig } from '../helpers/configs.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import {
  CAPTURE,
  captureMessages,
  config,
  involves,
  JANE,
  memoryLogger,
  SHARED_CALLER,
  until,
} from './suppression-fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';
import { gatewayHealth } from '../../src/observability/health.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

const MESSAGES = captureMessages();
const NEEDLES = needlesForCapture(CAPTURE);

function collectingSink(): RecordSink & { records: CdrRecord[] } {
  const records: CdrRecord[] = [];
  return {
    name: 'memory',
    records,
    write: async (r) => void records.push(JSON.parse(r.value) as CdrRecord),
    close: async () => undefined,
  };
}

/** Every record the capture gives under `loaded`, in the order the sanitiser sees them, nothing suppressed. */
async function baseline(loaded: LoadedConfig): Promise<CdrRecord[]> {
  const sink = collectingSink();
  const { log } = memoryLogger();
  const p = buildPipeline(
    loaded,
    sink,
    log,
    undefined,
    undefined,
    createSuppressionList({
      store: openSuppressionStore(tempDir(t, 'empty')),
      audit: { append: async () => undefined as never },
    }),
  );
  for (const m of MESSAGES) p.handle(m);
  await p.drain();
  return sink.records;
}

t.test(
  'withhold: suppressed mid-stream through the API, from the very next record; broker, live feed and others unaffected',
  async (t) => {
    const broker = await startKafkaBroker();
    t.teardown(() => broker.close());
    const dir = tempDir(t, 'suppress');
    const loaded = config(dir, {
      sink: { type: 'kafka', brokers: [broker.address], requestTimeoutMs: 2000 },
      delivery: { sendTimeoutMs: 2000, retryIntervalMs: 100, shutdownDeadlineMs: 2000 },
    });
    const { log, text: logText } = memoryLogger();
    const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
    t.teardown(() => audit.close());
    const list = openSuppressionList(dir, audit);
    const sink = await openSink(loaded, {}, log);
    const pipeline = buildPipeline(loaded, sink, log, undefined, undefined, list);
    const feed = createLiveFeed({ maxBufferedBytes: 1 << 20 });
    connectLiveFeed(feed, { pipeline });
    const api = await startApiServer({
      host: '127.0.0.1',
      port: 0,
      authenticate: createAuthenticator(API_TOKENS),
      registry: createConsentRegistry({ store: openConsentStore(dir), audit, tenants: ['acme', 'globex'] }),
      health: gatewayHealth(),
      feed,
      log,
      suppressions: createSuppressionApi(list, (id) => loaded.privacy.tenants.get(id)),
    });
    t.teardown(() => api.close());
    const frames: Record<string, string[]> = { acme: [], globex: [] };
    for (const tenant of ['acme', 'globex'] as const) {
      const ws = new WebSocket(`ws://127.0.0.1:${api.port}/v1/tenants/${tenant}/live`);
      t.teardown(() => ws.terminate());
      ws.on('message', (d) => frames[tenant]!.push(d.toString()));
      ws.once('open', () => ws.send(JSON.stringify({ type: 'auth', token: TOKENS[tenant] })));
    }
    await until('both live feeds say hello', () => frames.acme!.length === 1 && frames.globex!.length === 1);

    const jane = subjectTokens(loaded.privacy.tenants.get('acme')!, JANE)!;
    const expected = await baseline(config(tempDir(t, 'baseline')));
    const janeAt = expected.flatMap((r, i) => (involves(r, jane) ? [i] : []));
    t.equal(janeAt.length, 3, 'the subscriber has three acme records in the capture (Master.csv)');
    // Suppress after their first record and before the other two.
    const addAfter = janeAt[0]! + 1;
    let addedAtCdr = -1;
    const responses: string[] = [];
    for (const m of MESSAGES) {
      pipeline.handle(m);
      if (addedAtCdr < 0 && pipeline.counts().cdrs === addAfter) {
        const res = await fetch(`http://127.0.0.1:${api.port}/v1/tenants/acme/suppressions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKENS.acme}`, 'content-type': 'application/json' },
          body: JSON.stringify({ number: JANE }),
        });
        responses.push(await res.clone().text());
        t.equal(res.status, 201, 'added');
        const body = (await res.json()) as { suppression: { id: string; tokens?: unknown } };
        t.notOk('tokens' in body.suppression, 'the answer holds the id only');
        t.same(
          list
            .list('acme')
            .find((e) => e.id === body.suppression.id)
            ?.tokens.map((x) => x.token),
          jane.keys.map((k) => k.token),
          'the API stored the tokens `callveil token` prints',
        );
        addedAtCdr = pipeline.counts().cdrs;
      }
    }
    await pipeline.drain();
    await sink.close();
    t.equal(addedAtCdr, addAfter, 'nothing was assembled while the request was in flight');

    const published = expected.filter((r, i) => i < addedAtCdr || !involves(r, jane));
    t.equal(expected.length - published.length, 2, 'exactly their two later records are withheld');
    t.equal(pipeline.counts().withheld.suppressed, 2, 'counted as withheld by policy (suppressed)');
    const atBroker = broker.records().map((m) => CdrRecord.parse(JSON.parse(m.value!.toString())));
    t.same(
      new Set(atBroker.map((r) => r.id)),
      new Set(published.map((r) => r.id)),
      'the broker holds everything else, unchanged in number',
    );
    t.same(
      atBroker.filter((r) => involves(r, jane)).map((r) => r.id),
      [expected[janeAt[0]!]!.id],
      'of theirs, only the record made before they were added',
    );
    const sharedInGlobex = subjectTokens(loaded.privacy.tenants.get('globex')!, SHARED_CALLER)!;
    t.equal(atBroker.filter((r) => involves(r, sharedInGlobex)).length, 2, "another tenant's records are untouched");

    await until(
      'the live feed caught up',
      () =>
        frames.acme!.filter((f) => f.includes('"record"')).length ===
        published.filter((r) => r.tenant === 'acme').length,
    );
    const liveRecords = frames
      .acme!.map((f) => JSON.parse(f) as { type: string; record?: CdrRecord })
      .filter((f) => f.type === 'record')
      .map((f) => f.record!);
    t.same(
      liveRecords.filter((r) => involves(r, jane)).map((r) => r.id),
      [expected[janeAt[0]!]!.id],
      'the live feed shows nothing of them after the add',
    );
    const janeLater = janeAt.slice(1).map((i) => expected[i]!);
    const laterFrames = frames.acme!.filter((f) =>
      janeLater.some((r) => f.includes(r.legId) && f.includes('"record"')),
    );
    t.same(laterFrames, [], 'no record frame for their withheld legs');
    t.notOk(
      frames.globex!.some((f) => jane.keys.some((k) => f.includes(k.token))),
      'their acme tokens never reach another tenant',
    );

    const lines = readFileSync(join(dir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    t.match(
      lines,
      [
        {
          action: 'suppression.add',
          tenant: 'acme',
          actor: 'tenant:acme:acme-admin',
          detail: { via: 'number', kids: 'acme-1' },
        },
      ],
      'the add is audited',
    );
    t.ok(verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }).ok);
    t.same(
      scanBuffers(NEEDLES, [
        ...broker.records().map((m, i) => ({ label: `kafka ${i}`, data: m.value! })),
        { label: 'ws acme', data: frames.acme!.join('\n') },
        { label: 'ws globex', data: frames.globex!.join('\n') },
        { label: 'api', data: responses.join('\n') },
        { label: 'audit', data: readFileSync(join(dir, 'audit.jsonl')) },
        { label: 'suppressions', data: readFileSync(join(dir, 'suppressions', 'acme.json')) },
        { label: 'log', data: logText() },
      ]),
      [],
      'no raw number in Kafka, the live feed, API answers, audit, the suppression file or logs',
    );
  },
);

t.test('redact mode (rules): their records are published with them fully redacted, nothing else changes', async (t) => {
  const dir = tempDir(t, 'redact');
  const rules = join(dir, 'rules');
  cpSync(RULES_DIR, rules, { recursive: true });
  writeFileSync(
    join(rules, 'acme.yaml'),
    readFileSync(join(rules, 'acme.yaml'), 'utf8') + 'suppression: { mode: redact }\n',
  );
  const loaded = rulesConfig(dir, rules, { storage: { dir } });
  t.equal(loaded.privacy.tenants.get('acme')!.suppression?.mode, 'redact');
  t.equal(loaded.privacy.tenants.get('globex')!.suppression?.mode, 'withhold', 'the default is withhold');
  const expected = await baseline(loaded);
  const acme = loaded.privacy.tenants.get('acme')!;
  const jane = subjectTokens(acme, JANE)!;
  t.equal(jane.keys.length, 2, 'acme has two live keys: the subscriber is added under both');
  const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const list = openSuppressionList(dir, audit);
  await createSuppressionApi(list, (id) => loaded.privacy.tenants.get(id)).addNumber(
    'acme',
    '+44 7700 900123',
    'operator:test',
  );
  const sink = collectingSink();
  const { log } = memoryLogger();
  const p = buildPipeline(loaded, sink, log, undefined, undefined, list);
  for (const m of MESSAGES) p.handle(m);
  await p.drain();

  t.equal(sink.records.length, expected.length, 'nothing withheld: every record is published');
  const theirs = expected.flatMap((r, i) => (involves(r, jane) ? [i] : []));
  t.equal(theirs.length, 3);
  sink.records.forEach((r, i) => {
    const before = expected[i]!;
    if (!theirs.includes(i)) return t.same(r, before, `record ${before.id} unchanged`);
    t.notOk(involves(r, jane), `record ${r.id}: no token of theirs left`);
    t.equal(
      r.caller,
      undefined,
      'the suppressed party (the caller) is gone entirely: no token, prefix, country or number type',
    );
    t.equal(r.callerName, undefined, 'and with it the caller name');
    const { caller: _c, callerName: _n, ...rest } = before;
    t.same(r, rest, 'the rest of the record (the other party, times, billing) is as it was');
  });
});

t.test(
  'an unreadable list withholds that tenant only (fail closed), refuses changes, and recovers once fixed',
  async (t) => {
    const dir = tempDir(t, 'unreadable');
    mkdirSync(join(dir, 'suppressions'), { recursive: true });
    writeFileSync(join(dir, 'suppressions', 'acme.json'), '{"version":1,"tenant":"acme","entries":[{"id":');
    const loaded = config(dir);
    const expected = await baseline(loaded);
    let clock = Date.parse('2026-11-23T08:00:00Z');
    const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
    t.teardown(() => audit.close());
    const list = createSuppressionList({
      store: openSuppressionStore(dir),
      audit,
      now: () => new Date(clock),
      retryUnreadableMs: 5000,
    });
    t.equal(list.problem('acme'), 'not valid JSON');
    const sink = collectingSink();
    const { log, text } = memoryLogger();
    const p = buildPipeline(loaded, sink, log, undefined, undefined, list);
    const half = Math.floor(MESSAGES.length / 2);
    for (const m of MESSAGES.slice(0, half)) p.handle(m);
    await p.drain();
    const firstHalf = sink.records.length;
    t.ok(
      p.counts().withheld['suppression-unavailable'] > 0,
      `acme records withheld (${p.counts().withheld['suppression-unavailable']})`,
    );
    t.same(
      sink.records.map((r) => r.tenant).filter((x) => x === 'acme'),
      [],
      'no acme record published',
    );
    t.same(
      sink.records.map((r) => r.id),
      expected
        .slice(0, p.counts().cdrs)
        .filter((r) => r.tenant === 'globex')
        .map((r) => r.id),
      "globex's records are published as usual",
    );
    const api = createSuppressionApi(list, (id) => loaded.privacy.tenants.get(id));
    await t.rejects(
      api.addNumber('acme', JANE, 'operator:test'),
      { code: 'GW_SUPPRESSION_STORE' },
      'changes are refused',
    );
    t.throws(() => api.list('acme'), { code: 'GW_SUPPRESSION_STORE' });
    t.notMatch(text().toString(), /7700|900123/);

    // An operator repairs the file; the list is tried again after retryUnreadableMs.
    writeFileSync(join(dir, 'suppressions', 'acme.json'), JSON.stringify({ version: 1, tenant: 'acme', entries: [] }));
    clock += 5000;
    for (const m of MESSAGES.slice(half)) p.handle(m);
    await p.drain();
    t.equal(list.problem('acme'), undefined, 'readable again');
    const recovered = sink.records.slice(firstHalf);
    t.ok(
      recovered.some((r) => r.tenant === 'acme'),
      'acme records flow again',
    );
  },
);

t.test(
  'matching does not depend on the field method: an fpe caller (globex rules) is found by its keyed token',
  async (t) => {
    const dir = tempDir(t, 'fpe');
    const loaded = rulesConfig(dir, RULES_DIR, { storage: { dir } });
    const globex = loaded.privacy.tenants.get('globex')!;
    t.equal(globex.fields.caller.method, 'fpe', 'globex callers carry fpe values, not tokens');
    const subject = subjectTokens(globex, '+1 (202) 555-0146')!;
    const expected = await baseline(loaded);
    const theirs = expected.filter((r) => involves(r, subject));
    t.equal(theirs.length, 2, 'two globex records of theirs (Master.csv)');
    t.ok(
      theirs.every((r) => r.caller?.fpe !== undefined && r.caller.token === null),
      'found by fpe value in the baseline',
    );
    const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
    t.teardown(() => audit.close());
    const list = openSuppressionList(dir, audit);
    await createSuppressionApi(list, (id) => loaded.privacy.tenants.get(id)).addNumber(
      'globex',
      '2025550146',
      'operator:test',
    );
    const sink = collectingSink();
    const { log } = memoryLogger();
    const p = buildPipeline(loaded, sink, log, undefined, undefined, list);
    for (const m of MESSAGES) p.handle(m);
    await p.drain();
    t.same(
      sink.records.map((r) => r.id),
      expected.filter((r) => !involves(r, subject)).map((r) => r.id),
      'their records are withheld, all others published',
    );
  },
);
