// The live gateway as an operator watches it, with the PBX away: metrics on
// their own listener (never the tenant API port), every labelled series there
// from the start, the names the README lists, health that keeps the console
// up, and log lines with one key per field and one line per AMI attempt.
import t from 'tap';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import { startGateway } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { RULES_DIR, writeKeysFile } from '../helpers/configs.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { names, section, tables } from '../helpers/readme.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A port nothing listens on (bound, then closed): the PBX is away. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Keys repeated within one JSON object of a log line (pino writes a child's bindings and the call's fields as text). */
function duplicateKeys(line: string): string[] {
  const dups: string[] = [];
  let i = 0;
  const ws = () => {
    while (/\s/.test(line[i] ?? '')) i++;
  };
  const str = (): string => {
    let out = '';
    i++; // opening quote
    while (line[i] !== '"') {
      if (line[i] === '\\') i++;
      out += line[i++];
    }
    i++;
    return out;
  };
  const value = (): void => {
    ws();
    const c = line[i];
    if (c === '{') {
      i++;
      const seen = new Set<string>();
      ws();
      if (line[i] === '}') return void i++;
      for (;;) {
        ws();
        const key = str();
        if (seen.has(key)) dups.push(key);
        seen.add(key);
        ws();
        i++; // :
        value();
        ws();
        if (line[i++] === '}') return;
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (line[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (line[i++] === ']') return;
      }
    }
    if (c === '"') return void str();
    while (i < line.length && !/[,}\]]/.test(line[i]!)) i++;
  };
  value();
  return dups;
}

t.test('duplicateKeys finds what JSON.parse hides', async (t) => {
  t.same(duplicateKeys('{"component":"api","a":{"b":1,"b":2},"component":"api"}'), ['b', 'component']);
  t.same(duplicateKeys('{"a":"x\\"y","b":[1,{"c":2}],"d":null}'), []);
});

t.test('the gateway with the PBX away', async (t) => {
  const dir = tempDir(t, 'obs-gw');
  const broker = await startKafkaBroker();
  t.teardown(() => broker.close());
  const amiPort = await closedPort();
  const loaded = parseConfig(
    {
      ami: { host: '127.0.0.1', port: amiPort, username: 'gw', secret: 'pw', reconnectMinMs: 20, reconnectMaxMs: 100 },
      rules: { dir: RULES_DIR, keysFile: writeKeysFile(dir) },
      sink: { type: 'kafka', brokers: [broker.address], requestTimeoutMs: 2000 },
      storage: { dir },
      api: { enabled: true, port: 0 },
      metrics: { port: 0 },
    },
    { K_NORTHWIND: 'c30f'.repeat(16) },
    '(test)',
  );
  const logs: string[] = [];
  const log = createLogger('info', new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }));
  const gw = await startGateway(loaded, { K_NORTHWIND: 'c30f'.repeat(16) }, log);
  t.teardown(() => gw.stop());
  const api = `http://127.0.0.1:${gw.api!.port}`;
  const ops = `http://127.0.0.1:${gw.metricsServer!.port}`;

  // Let the client fail a few attempts.
  const deadline = Date.now() + 10_000;
  while (gw.client.stats().connects === 0 && logs.filter((l) => l.includes('"component":"ami"')).length < 3) {
    if (Date.now() > deadline) throw new Error('no AMI attempts logged');
    await new Promise((r) => setTimeout(r, 20));
  }

  await t.test('metrics: on their own listener, never on the tenant API port', async (t) => {
    t.equal((await fetch(`${api}/metrics`)).status, 404);
    const res = await fetch(`${ops}/metrics`);
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  });

  const text = await fetch(`${ops}/metrics`).then((r) => r.text());
  const families = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1]!, m[2]!);
  const labelsOf = (family: string): Set<string> =>
    new Set(
      [...text.matchAll(new RegExp(`^${family}\\{([^}]*)\\}`, 'gm'))].flatMap((m) =>
        [...m[1]!.matchAll(/(\w+)="/g)].map((x) => x[1]!),
      ),
    );

  await t.test('labelled series are there at 0 before any event', async (t) => {
    for (const series of [
      'callveil_records_withheld_total{reason="suppressed",tenant="acme"} 0',
      'callveil_records_withheld_total{reason="unknown-tenant",tenant="none"} 0',
      'callveil_records_written_total{tenant="northwind",stream="cdr"} 0',
      'callveil_records_failed_total{stage="sink"} 0',
      'callveil_recordings_total{outcome="kept"} 0',
      'callveil_recording_stops_total{result="failed"} 0',
      'callveil_rules_reload_failures_total{trigger="sighup"} 0',
      'callveil_retention_sweep_failures_total{store="topics"} 0',
      'callveil_health_ok{part="ami"} 0',
      'callveil_health_ok{part="consent-store"} 1',
    ])
      t.match(text, series, series);
    for (const family of [
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_gc_duration_seconds',
    ])
      t.ok(families.has(family), family);
    t.match(text, /^callveil_build_info\{version="[^"]+",node="v\d+[^"]*"\} 1$/m);
  });

  await t.test('README "Metrics" lists every callveil_* family the gateway exports, with its labels', async (t) => {
    const [table] = tables(section('Metrics'));
    const documented = new Map<string, Set<string>>();
    for (const row of table!)
      for (const name of names(row[0]!).filter((n) => n.startsWith('callveil_'))) {
        const m = /^([a-z_]+)(?:\{([a-z_,]*)\})?$/.exec(name);
        t.ok(m, `README names a metric plainly: ${name}`);
        if (m) documented.set(m[1]!, new Set(m[2] ? m[2].split(',') : []));
      }
    const exported = [...families.keys()].filter((n) => n.startsWith('callveil_')).sort();
    t.same([...documented.keys()].sort(), exported, 'the same names');
    // A family whose label values are only known once it happens (a broker's refusal code) has no series yet.
    const notYet = new Set(['callveil_kafka_refusals_total']);
    for (const [name, labels] of documented)
      if (families.has(name) && families.get(name) !== 'summary')
        t.same([...labelsOf(name)].sort(), notYet.has(name) ? [] : [...labels].sort(), `${name} labels`);
  });

  await t.test('health: the PBX away keeps the console up, and says so', async (t) => {
    for (const base of [api, ops]) {
      const res = await fetch(`${base}/readyz`);
      t.equal(res.status, 200, `${base}: ready`);
      const body = (await res.json()) as { ready: boolean; parts: Record<string, { ok: boolean; reason?: string }> };
      t.same(body.parts.ami, { ok: false, reason: 'unreachable' });
      t.same(Object.keys(body.parts).sort(), ['ami', 'consent', 'consent-store', 'rules', 'sink']);
      t.equal((await fetch(`${base}/livez`)).status, 200);
    }
  });

  await t.test('logs: one key per field, one line per AMI attempt with its number and next delay', async (t) => {
    const lines = logs.join('').trim().split('\n');
    t.same(
      lines.filter((l) => duplicateKeys(l).length > 0),
      [],
      'no line says a key twice',
    );
    const ami = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o.component === 'ami');
    t.ok(ami.length >= 3);
    const attempts = ami.map((o) => o.attempt);
    t.same(attempts, [...new Set(attempts)], 'each attempt once');
    t.ok(
      ami.every((o) => typeof o.attempt === 'number' && typeof o.delayMs === 'number' && o.code === 'GW_AMI_CONNECT'),
      'attempt, code and next delay on each',
    );
  });
});
