// The leak scanner is the proof behind privacy invariant 2, so it is tested
// both ways: it must find a planted fixture number in any format, and it must
// stay silent on clean gateway-like output (else every test drowns in noise).
import t from 'tap';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CAPTURES, needlesForAllCaptures, needlesForCapture, readCapture, readMasterCsv } from './ground-truth.js';
import {
  emptyNeedles,
  mergeNeedles,
  needlesFromCapture,
  needlesFromMasterCsv,
  needlesFromPlan,
  numbersInText,
  parseCsv,
  scanBuffers,
  scanFiles,
  searchedDigitStrings,
  significantDigits,
  type Needles,
} from './leak-scanner.js';

const inbound = needlesForCapture('inbound-pstn');
const CLEAN_PREFIX = '{"ts":"2026-11-23T07:21:13.512Z","id":"pbx-lab-1795418472.36","caller":';
const CLEAN_SUFFIX = ',"billsec":2,"disposition":"ANSWERED","src_ip":"127.0.0.1"}\n';

function needles(numbers: string[], names: string[] = []): Needles {
  return { numbers: new Set(numbers), names: new Set(names) };
}

t.test('significant digits strip +, 00, country code and trunk 0', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['+447700900123', ['447700900123', '7700900123']],
    ['00447700900125', ['00447700900125', '447700900125', '7700900125']],
    ['07700900124', ['07700900124', '7700900124']],
    ['447700900126', ['447700900126', '7700900126']],
    ['12025550145', ['12025550145', '2025550145']],
    ['2025550144', ['2025550144']],
    ['+1 (202) 555-0146', ['12025550146', '2025550146']],
    ['+1%20(202)%20555-0146', ['12025550146', '2025550146']],
    ['+1202555006', ['1202555006', '202555006']], // the lab's malformed globex caller id
    ['1001', []], // extensions are below the 7-digit floor
  ];
  for (const [raw, want] of cases) t.same(significantDigits(raw).sort(), want.sort(), raw);
});

t.test('a planted fixture number is found in every format', async (t) => {
  const planted = [
    '"+447700900123"',
    '"07700900123"',
    '"00447700900123"',
    '"447700900123"',
    '"+44 7700 900123"',
    '"07700 900 123"',
    '"+44-7700-900123"',
    '"%2B447700900123"',
    '"+1 (202) 555-0146"',
    '"12025550146"',
    '"2025550146"',
    '"202.555.0146"',
    '"SIP/07700900123-0000002a"',
    '"sip:+447700900123@127.0.0.1"',
    JSON.stringify(JSON.stringify({ from: '+447700900123' })), // JSON inside a JSON string
    '"+1%20(202)%20555-0146"',
    '"/var/spool/asterisk/monitor/20261123-072114-+447700900123-1010-pbx-lab-1795418474.44.wav"',
  ];
  for (const value of planted) {
    const leaks = scanBuffers(inbound, [{ label: value, data: CLEAN_PREFIX + value + CLEAN_SUFFIX }]);
    t.equal(leaks.length, 1, `found in ${value}`);
    const leak = leaks[0];
    if (leak === undefined) continue;
    t.equal(leak.kind, 'number');
    t.match(leak.needle, /7700900123|2025550146|555-0146/);
    t.notMatch(leak.context, /\d/, 'context masks digits');
  }
});

t.test('the scanner reports where, without repeating the number', async (t) => {
  const [leak] = scanBuffers(inbound, [{ label: 'sink.jsonl', data: CLEAN_PREFIX + '"+447700900123"' + CLEAN_SUFFIX }]);
  t.equal(leak?.label, 'sink.jsonl');
  t.equal(leak?.needle, '+447700900123');
  t.match(leak?.context, '"caller":"+############"');
});

t.test('names are found case-insensitively and when encoded', async (t) => {
  for (const form of ['Sam Example', 'SAM EXAMPLE', 'sam example', 'Sam%20Example', 'sam+example']) {
    const leaks = scanBuffers(inbound, [{ label: form, data: `{"caller_name":"${form}","count":3}` }]);
    t.same(
      leaks.map((l) => [l.kind, l.needle]),
      [['name', 'Sam Example']],
      form,
    );
    t.notMatch(leaks[0]?.context ?? '', /sam/i, 'context masks the name');
  }
});

t.test('extensions are a documented blind spot', async (t) => {
  const ext = needles(['1001', '8000']);
  t.equal(searchedDigitStrings(ext), 0);
  t.same(scanBuffers(ext, [{ label: 'x', data: 'ext 1001 queue 8000' }]), []);
});

t.test('clean gateway-like output yields no leak against every capture', async (t) => {
  const all = needlesForAllCaptures();
  const lines: string[] = [];
  let n = 0;
  for (const name of CAPTURES) {
    for (const row of readMasterCsv(name)) {
      const token = createHmac('sha256', 'tenant-secret').update(row.src).digest('base64url');
      lines.push(
        JSON.stringify({
          record_id: `${row.linkedid}:${row.sequence}`,
          uniqueid: row.uniqueid,
          start: new Date(`${row.start.replace(' ', 'T')}Z`).toISOString(),
          epoch_ms: Date.parse(`${row.start.replace(' ', 'T')}Z`) + n,
          src: `tok_${token.slice(0, 22)}`,
          src_hex: createHmac('sha256', 'k2').update(row.src).digest('hex'),
          country: 'GB',
          billsec: row.billsec,
          duration: row.duration,
          disposition: row.disposition,
          tenant: row.accountcode,
          pbx: '127.0.0.1:5038',
          seq: n++,
        }),
      );
    }
  }
  const log = `{"level":30,"time":1795418472123,"msg":"published","records":${n},"bytes":${lines.join('').length}}\n`;
  const leaks = scanBuffers(all, [
    { label: 'records.jsonl', data: lines.join('\n') },
    { label: 'gateway.log', data: log },
  ]);
  t.same(leaks, [], `${n} records, ${all.numbers.size} numbers and ${all.names.size} names searched`);
});

t.test('needles from inbound-pstn hold every caller format the README lists', async (t) => {
  const fromCapture = needlesFromCapture(readCapture('inbound-pstn'));
  for (const src of [
    '+447700900123',
    '07700900124',
    '00447700900125',
    '447700900126',
    '2025550144',
    '12025550145',
    '+1 (202) 555-0146',
  ]) {
    t.ok(fromCapture.numbers.has(src), src);
  }
  t.ok(fromCapture.names.has('Sam Example'), 'PAI display name');
  t.ok(fromCapture.names.has('Jane Example'));
  t.ok(fromCapture.numbers.has('07700 900181'), 'digit-only caller name is a number');
  t.notOk(fromCapture.names.has('07700 900181'));
  for (const placeholder of ['<unknown>', 'Anonymous', 'anonymous', 'Restricted', 'Unavailable', 'unknown']) {
    t.notOk(fromCapture.names.has(placeholder), `placeholder ${placeholder} is not a name`);
  }
});

t.test('needles carry no ids, timestamps, IPs or RTP counters', async (t) => {
  const all = needlesForAllCaptures();
  const odd = [...all.numbers].filter((n) => /[.:a-z]/i.test(n) || /^(?:\+|00)?20261123/.test(n));
  t.same(odd, [], 'every number needle is digits and phone punctuation, none a recording timestamp');
  // Uniqueids are what the gateway keys records by: no needle may hide in them.
  const ids = CAPTURES.flatMap((c) => readMasterCsv(c).flatMap((r) => [r.uniqueid, r.linkedid]));
  t.same(scanBuffers(all, [{ label: 'ids', data: ids.join(' ') }]), []);
});

t.test('free-text extraction skips ids around the number', async (t) => {
  t.same(numbersInText('20261123-072116-+1 (202) 555-0146-1007-pbx-lab-1795418476.50'), ['+1 (202) 555-0146']);
  t.same(numbersInText('SIP/trunk/07700900401,8,T'), ['07700900401']);
  t.same(numbersInText('sip:+447700900123@127.0.0.1:5090'), ['+447700900123']);
  t.same(numbersInText('SIP/1002-00000001'), []);
  t.same(numbersInText('ssrc=1512345678;themssrc=0;rxjitter=0.000000'), []);
  t.same(numbersInText('0c4971aa56b447055bd8f9b35f531e4f@127.0.0.1:5060'), []);
});

t.test('scanning the raw capture itself finds leaks (sanity)', async (t) => {
  const leaks = scanBuffers(inbound, [{ label: 'inbound-pstn.ami', data: readCapture('inbound-pstn') }]);
  t.ok(leaks.filter((l) => l.kind === 'number').length >= 20, 'numbers');
  t.ok(
    leaks.some((l) => l.kind === 'name' && l.needle === 'Jane Example'),
    'names',
  );
  t.same(
    leaks.filter((l) => /\d/.test(l.context)),
    [],
    'no context shows a digit',
  );
});

t.test('plan and Master.csv needles', async (t) => {
  const plan = needlesFromPlan(
    'uac;from_user;from_display;request_uri_user;uac_mode;extra_header_1;extra_header_2\n' +
      'carrier;+1%20(202)%20555-0146;;+442079460127;long;X-Info: none;X-Info: none\n' +
      'carrier;+447700900179;"Sam Example";+442079460112;long;P-Asserted-Identity: "Sam Example" <sip:+447700900180@carrier.example>;X-Info: none\n' +
      'carrier;anonymous;"Anonymous";2079460141;short;X-Info: none;Privacy: id\n',
  );
  t.same([...plan.numbers].sort(), [
    '+1 (202) 555-0146',
    '+442079460112',
    '+442079460127',
    '+447700900179',
    '+447700900180',
    '2079460141',
  ]);
  t.same([...plan.names], ['Sam Example']);

  const master = needlesFromMasterCsv(
    '"acme","07700900124","s","inbound","""Jane Example"" <07700900124>","SIP/trunk-00000026","SIP/1002-00000027","Dial","SIP/1002,4,tT","2026-11-23 07:21:13","2026-11-23 07:21:13","2026-11-23 07:21:14",1,1,"ANSWERED","DOCUMENTATION","pbx-lab-1795418473.38","","acme","pbx-lab-1795418473.38",42\n',
  );
  t.same([...master.numbers], ['07700900124']);
  t.same([...master.names], ['Jane Example']);
});

t.test('needlesForCapture merges capture, plan and Master.csv', async (t) => {
  // chan_sip took the PAI number, so the From user is only in the plan.
  t.notOk(needlesFromCapture(readCapture('inbound-pstn')).numbers.has('+447700900179'));
  t.ok(inbound.numbers.has('+447700900179'));
  const merged = mergeNeedles(needles(['1']), needles(['2'], ['A b c']), emptyNeedles());
  t.same([[...merged.numbers], [...merged.names]], [['1', '2'], ['A b c']]);
  // a copy: planting into one result must not leak into the next
  needlesForCapture('edge-actions').numbers.add('+449999999999');
  t.notOk(needlesForCapture('edge-actions').numbers.has('+449999999999'));
});

t.test('parseCsv handles quotes, doubled quotes, empty and unquoted fields', async (t) => {
  t.same(parseCsv('"a,b","say ""hi""",,3\n"x",y\n'), [
    ['a,b', 'say "hi"', '', '3'],
    ['x', 'y'],
  ]);
  t.same(parseCsv('h;P-Asserted-Identity: "Sam" <sip:1@x>;\n', ';'), [
    ['h', 'P-Asserted-Identity: "Sam" <sip:1@x>', ''],
  ]);
  t.throws(() => parseCsv('"open'), /unterminated/);
});

t.test('scanFiles reads plain and gzipped files', async (t) => {
  const dir = t.testdir({});
  const plain = join(dir, 'sink.jsonl');
  const gz = join(dir, 'spool.jsonl.gz');
  const clean = join(dir, 'clean.jsonl');
  writeFileSync(plain, CLEAN_PREFIX + '"07700900123"' + CLEAN_SUFFIX);
  writeFileSync(gz, gzipSync(CLEAN_PREFIX + '"Jane Example"' + CLEAN_SUFFIX));
  writeFileSync(clean, CLEAN_PREFIX + '"tok_Q2xlYW4gdG9rZW4"' + CLEAN_SUFFIX);
  const leaks = await scanFiles(inbound, [plain, gz, clean]);
  t.same(
    leaks.map((l) => [l.label, l.kind]),
    [
      [plain, 'number'],
      [gz, 'name'],
    ],
  );
});

t.test('a few MB of clean output against all needles: no false hit', async (t) => {
  const all = needlesForAllCaptures();
  const line = CLEAN_PREFIX + '"tok_Q2xlYW4gdG9rZW4","n":[1,2,3],"t":"2026-11-23 07:21:13"' + CLEAN_SUFFIX;
  const data = line.repeat(Math.ceil(4_000_000 / line.length));
  const started = performance.now();
  const leaks = scanBuffers(all, [{ label: 'big', data }]);
  const ms = performance.now() - started;
  t.same(leaks, []);
  t.comment(
    `scanned ${(data.length / 1e6).toFixed(1)} MB, ${searchedDigitStrings(all)} digit strings + ${all.names.size} names in ${ms.toFixed(0)} ms`,
  );
});
