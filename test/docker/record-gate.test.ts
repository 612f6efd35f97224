// The dialplan gate in docker/asterisk/extensions-callveil.conf, parsed and
// run by a small interpreter of the dialplan it uses (Set, GotoIf, Goto,
// MixMonitor, UserEvent, Return; ${VAR}, ${ARGn}, ${DB()}, ${IF()}, $[...])
// against the AstDB the gateway's mirror wrote over AMI to the test server:
// the family and keys the gate reads are the ones the gateway writes, for
// calls with one, two and three internal parties, and it records only when
// every party has consent.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import t from 'tap';
import { openAuditLog } from '../../src/audit/audit-log.js';
import { createAstdbMirror } from '../../src/consent/astdb-mirror.js';
import { createConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import { createAmiClient } from '../../src/source/ami-client.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';
import { memoryLog } from '../helpers/memory-log.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const GATE = readFileSync(join(ROOT, 'docker', 'asterisk', 'extensions-callveil.conf'), 'utf8');
const MAIN = readFileSync(join(ROOT, 'docker', 'asterisk', 'extensions.conf'), 'utf8');

interface Step {
  readonly label: string | undefined;
  readonly app: string;
  readonly args: string;
}

/** The priorities of one context's `s` extension, in order. */
function parseContext(conf: string, context: string): Step[] {
  const steps: Step[] = [];
  let inside = false;
  for (const raw of conf.split('\n')) {
    const line = raw.replace(/(^|[^\\]);.*$/, '$1').trim();
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) {
      inside = header[1] === context;
      continue;
    }
    if (!inside || line === '') continue;
    const m = /^(?:exten\s*=>\s*s,1|same\s*=>\s*n(?:\(([a-z]+)\))?),(\w+)\((.*)\)$/.exec(line);
    if (!m) throw new Error(`a line the test interpreter does not know: ${line}`);
    steps.push({ label: m[1], app: m[2]!, args: m[3]! });
  }
  return steps;
}

interface Run {
  readonly dbReads: string[];
  readonly recorded: string | undefined;
  readonly events: string[];
  readonly returned: string | undefined;
}

/** Runs the gate as Asterisk would: Gosub with ARG1..ARGn, channel variables, an AstDB. */
function runGate(steps: Step[], args: string[], channel: Record<string, string>, db: Record<string, string>): Run {
  const vars = new Map<string, string>(Object.entries(channel));
  args.forEach((a, i) => vars.set(`ARG${i + 1}`, a));
  vars.set('ARGC', String(args.length));
  const dbReads: string[] = [];
  let recorded: string | undefined;
  const events: string[] = [];
  const fn = (name: string, arg: string): string => {
    if (name === 'DB') {
      dbReads.push(arg);
      return db[arg] ?? '';
    }
    if (name === 'IF') {
      const m = /^([^?]*)\?([^:]*)(?::(.*))?$/.exec(arg)!;
      return truthy(m[1]!) ? m[2]! : (m[3] ?? '');
    }
    if (name === 'CHANNEL') return vars.get(`CHANNEL(${arg})`) ?? '';
    if (name === 'STRFTIME') return '20261202-150000';
    throw new Error(`function ${name} unknown to the test interpreter`);
  };
  const expand = (s: string): string => {
    for (;;) {
      const v = /\$\{([^${}[\]]*)\}/.exec(s);
      const e = /\$\[([^$[\]{}]*)\]/.exec(s);
      if (!v && !e) return s;
      if (v) {
        const call = /^([A-Z_]+)\((.*)\)$/.exec(v[1]!);
        const val = call ? fn(call[1]!, call[2]!) : (vars.get(v[1]!) ?? '');
        s = s.slice(0, v.index) + val + s.slice(v.index + v[0].length);
      } else if (e) s = s.slice(0, e.index) + expr(e[1]!) + s.slice(e.index + e[0].length);
    }
  };
  let pc = 0;
  const jump = (label: string) => {
    pc = steps.findIndex((s) => s.label === label);
    if (pc < 0) throw new Error(`no label ${label}`);
  };
  for (let n = 0; n < 1000; n++) {
    const step = steps[pc];
    if (step === undefined) throw new Error('ran off the end without Return');
    pc++;
    const a = expand(step.args);
    if (step.app === 'Set') {
      const eq = a.indexOf('=');
      vars.set(
        a
          .slice(0, eq)
          .replace(/^LOCAL\((.*)\)$/, '$1')
          .trim(),
        a.slice(eq + 1),
      );
    } else if (step.app === 'GotoIf') {
      const m = /^([^?]*)\?([^:]*)(?::(.*))?$/.exec(a)!;
      const to = truthy(m[1]!) ? m[2] : m[3];
      if (to) jump(to);
    } else if (step.app === 'Goto') jump(a);
    else if (step.app === 'MixMonitor') recorded = a.split(',')[0];
    else if (step.app === 'UserEvent') events.push(a);
    else if (step.app === 'Return') return { dbReads, recorded, events, returned: a };
    else throw new Error(`application ${step.app} unknown to the test interpreter`);
  }
  throw new Error('the gate loops');
}

function truthy(s: string): boolean {
  const v = s.trim();
  return v !== '' && v !== '0';
}

/** $[...] as the gate uses it: one binary operator, quoted or bare operands. */
function expr(s: string): string {
  const m = /^\s*("[^"]*"|\S+)\s*(!=|<=|>=|=|<|>|\+)\s*("[^"]*"|\S+)\s*$/.exec(s);
  if (!m) throw new Error(`expression unknown to the test interpreter: ${s}`);
  const l = m[1]!.replace(/^"|"$/g, '');
  const r = m[3]!.replace(/^"|"$/g, '');
  const num = (x: string) => Number(x);
  switch (m[2]) {
    case '=':
      return l === r ? '1' : '0';
    case '!=':
      return l !== r ? '1' : '0';
    case '<':
      return num(l) < num(r) ? '1' : '0';
    case '<=':
      return num(l) <= num(r) ? '1' : '0';
    case '>':
      return num(l) > num(r) ? '1' : '0';
    case '>=':
      return num(l) >= num(r) ? '1' : '0';
    default:
      return String(num(l) + num(r));
  }
}

t.test('the gate reads the keys the gateway writes, and records only with every party consenting', async (t) => {
  const dir = tempDir(t, 'gate');
  const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const reg = createConsentRegistry({ store: openConsentStore(dir), audit, tenants: ['acme', 'globex'] });
  await reg.set(
    'acme',
    ['1001', '1002', '1003'].map((extension) => ({ extension, recording: true })),
    'test',
  );
  await reg.set('acme', [{ extension: '1004', recording: false }], 'test');
  await reg.set('globex', [{ extension: '1001', recording: true }], 'test');
  const srv = await startReplayServer({ capture: Buffer.alloc(0), holdOpen: true });
  t.teardown(() => srv.close());
  const client = createAmiClient({ host: '127.0.0.1', port: srv.port, username: 'gw', secret: 'pw', reconnect: false });
  const mirror = createAstdbMirror({ ami: client, registry: reg, family: 'callveil', log: memoryLog().log });
  const connected = new Promise<void>((r) => client.onState((s) => s === 'connected' && r()));
  client.start();
  t.teardown(() => client.stop());
  await connected;
  await mirror.idle();
  const db = srv.astdb();
  const written = srv
    .actionsReceived()
    .filter((a) => a.action === 'DBPut')
    .map((a) => `${a.family}/${a.key}`);
  t.same(written.sort(), ['callveil/acme/1001', 'callveil/acme/1002', 'callveil/acme/1003', 'callveil/globex/1001']);

  const steps = parseContext(GATE, 'callveil-record-gate');
  const acme = { 'CHANNEL(accountcode)': 'acme', UNIQUEID: '1764687600.1', ASTSPOOLDIR: '/var/spool/asterisk' };
  const cases: Array<{ parties: string[]; records: boolean }> = [
    { parties: ['1001'], records: true },
    { parties: ['1004'], records: false }, // switched off: no entry
    { parties: ['1001', '1002'], records: true },
    { parties: ['1001', '1009'], records: false }, // never set: no entry
    { parties: ['1001', '1002', '1003'], records: true },
    { parties: ['1001', '1002', '1004'], records: false },
    { parties: ['1004', '1002', '1003'], records: false },
  ];
  for (const c of cases) {
    const run = runGate(steps, c.parties, acme, db);
    const keys = c.parties.map((p) => `callveil/acme/${p}`);
    // Parties are read in order up to the first without consent.
    const expectRead = c.records ? keys : keys.slice(0, keys.findIndex((k) => db[k] !== '1') + 1);
    t.same(run.dbReads, expectRead, `${c.parties.length} parties: the keys read are callveil/<tenant>/<ext>`);
    for (const k of run.dbReads.filter((k) => db[k] === '1'))
      t.ok(written.includes(k), `${k} is a key the gateway wrote`);
    t.equal(
      run.recorded !== undefined,
      c.records,
      `${c.parties.join('+')}: ${c.records ? 'recorded' : 'no recording'}`,
    );
    t.equal(run.returned, c.records ? 'started' : 'prevented');
    t.match(run.events, [
      c.records ? /^CallveilGate,Verdict: started,/ : /^CallveilGate,Verdict: prevented,Reason: no-consent/,
    ]);
    t.notMatch(run.events.join(), /10\d\d/, 'the event names no extension');
  }
  t.match(runGate(steps, ['1001'], acme, db).recorded, '/var/spool/asterisk/monitor/20261202-150000-1764687600.1.wav');

  // The tenant decides the family: globex's 1001 is not acme's 1001.
  const globex = runGate(steps, ['1001', '1002'], { 'CHANNEL(accountcode)': 'globex' }, db);
  t.same(globex.dbReads, ['callveil/globex/1001', 'callveil/globex/1002']);
  t.equal(globex.recorded, undefined);
  t.equal(runGate(steps, ['1001'], { CALLVEIL_TENANT: 'globex' }, db).recorded !== undefined, true, 'CALLVEIL_TENANT');

  // Without a tenant or parties: nothing recorded, nothing read.
  const none = runGate(steps, ['1001'], {}, db);
  t.same([none.dbReads, none.recorded, none.returned], [[], undefined, 'prevented']);
  t.match(none.events, [/Reason: no-tenant/]);
  const nobody = runGate(steps, [], acme, db);
  t.same([nobody.dbReads, nobody.recorded], [[], undefined]);
  t.match(nobody.events, [/Reason: no-party/]);
  // With the gateway's entries gone (a fresh AstDB), nothing records.
  t.equal(runGate(steps, ['1001', '1002', '1003'], acme, {}).recorded, undefined);
});

t.test('the demo dialplan includes the gate and records only through it', async (t) => {
  t.match(MAIN, /^#include extensions-callveil\.conf$/m);
  t.notMatch(MAIN, /MixMonitor\(/, 'no MixMonitor outside the gate');
  t.match(MAIN, /Gosub\(callveil-record-gate,s,1\(\$\{TARGET_EXT\}\)\)/);
  t.equal(
    parseContext(GATE, 'callveil-record-gate').filter((s) => s.app === 'MixMonitor').length,
    1,
    'one MixMonitor, after the checks',
  );
});
