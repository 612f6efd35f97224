// Ground truth must itself be right: row counts, linkedids and dispositions
// are checked against the figures in the fixture README, which were computed
// from the same files when they were recorded.
import t from 'tap';
import { readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  CAPTURES,
  DISPOSITIONS,
  FIXTURE_DIR,
  captureFile,
  fixturePath,
  masterCsvFile,
  celCsvFile,
  celExtra,
  needlesForCapture,
  parseCelCsv,
  parseMasterCsv,
  planFile,
  readCelCsv,
  readPlan,
  readCapture,
  readFixture,
  readMasterCsv,
  SYNTHETIC_CAPTURES,
  SYSTEM_NAMES,
  type CaptureName,
} from './ground-truth.js';

type Expected = { rows: number; linkedids: number; dispositions: Record<string, number> };

// From the fixture README, section "Captures".
const EXPECTED: Record<CaptureName, Expected> = {
  'basic-internal': { rows: 24, linkedids: 20, dispositions: { BUSY: 4, ANSWERED: 12, FAILED: 2, 'NO ANSWER': 6 } },
  'inbound-pstn': { rows: 47, linkedids: 40, dispositions: { ANSWERED: 31, BUSY: 4, FAILED: 2, 'NO ANSWER': 10 } },
  'outbound-pstn': { rows: 26, linkedids: 20, dispositions: { 'NO ANSWER': 9, CONGESTION: 2, BUSY: 4, ANSWERED: 11 } },
  'recording-consent': { rows: 21, linkedids: 20, dispositions: { ANSWERED: 19, 'NO ANSWER': 2 } },
  'edge-actions': { rows: 12, linkedids: 10, dispositions: { BUSY: 2, ANSWERED: 6, 'NO ANSWER': 4 } },
  'transfers-queue': { rows: 11, linkedids: 7, dispositions: { ANSWERED: 7, 'NO ANSWER': 4 } },
  load: {
    rows: 1603,
    linkedids: 1200,
    dispositions: { FAILED: 100, BUSY: 280, CONGESTION: 56, ANSWERED: 677, 'NO ANSWER': 490 },
  },
  'pjsip-transfers': { rows: 21, linkedids: 9, dispositions: { ANSWERED: 14, 'NO ANSWER': 7 } },
};

function countBy<T>(items: T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}

t.test('every capture has its files, and no capture is unlisted', async (t) => {
  for (const name of CAPTURES) {
    t.match(basename(captureFile(name)), new RegExp(`^${name}\\.ami(\\.gz)?$`));
    t.match(basename(masterCsvFile(name)), new RegExp(`^${name}\\.Master\\.csv(\\.gz)?$`));
    t.match(basename(planFile(name)), new RegExp(`^${name}\\.plan\\.csv(\\.gz)?$`));
  }
  const present = new Set(readdirSync(FIXTURE_DIR).flatMap((f) => /^(.+)\.ami(?:\.gz)?$/.exec(f)?.[1] ?? []));
  t.same([...present].sort(), [...CAPTURES, ...SYNTHETIC_CAPTURES].sort());
});

t.test('fixturePath resolves names and gzipped files, and says what is missing', async (t) => {
  t.equal(fixturePath('inbound-pstn'), join(FIXTURE_DIR, 'inbound-pstn.ami.gz'));
  t.equal(fixturePath('load', 'Master.csv'), join(FIXTURE_DIR, 'load.Master.csv.gz'));
  t.equal(fixturePath('inbound-pstn.plan.csv'), join(FIXTURE_DIR, 'inbound-pstn.plan.csv'));
  t.throws(() => fixturePath('no-such-capture'), /no fixture no-such-capture\.ami/);
  t.match(readCapture('basic-internal').subarray(0, 29).toString(), /^Asterisk Call Manager\/9\.0\.0\r\n/);
});

t.test('Master.csv row counts, calls and dispositions match the README', async (t) => {
  for (const name of CAPTURES) {
    const rows = readMasterCsv(name);
    const want = EXPECTED[name];
    t.equal(rows.length, want.rows, `${name} rows`);
    t.equal(new Set(rows.map((r) => r.linkedid)).size, want.linkedids, `${name} distinct linkedids`);
    t.same(
      countBy(rows, (r) => r.disposition),
      want.dispositions,
      `${name} dispositions`,
    );
    const unknown = rows.filter((r) => !(DISPOSITIONS as readonly string[]).includes(r.disposition));
    t.same(unknown, [], `${name} dispositions are among ${DISPOSITIONS.join('/')}`);
  }
});

t.test('rows are typed and internally consistent', async (t) => {
  const bad = CAPTURES.flatMap((name) =>
    readMasterCsv(name).filter(
      (r) =>
        !Number.isInteger(r.duration) ||
        !Number.isInteger(r.billsec) ||
        r.billsec > r.duration ||
        (r.disposition === 'ANSWERED' && r.answer === '') ||
        !new RegExp(`^${SYSTEM_NAMES[name]}-\\d+\\.\\d+$`).test(r.uniqueid) ||
        !new RegExp(`^${SYSTEM_NAMES[name]}-\\d+\\.\\d+$`).test(r.linkedid) ||
        !/^\d+$/.test(r.sequence) ||
        !/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(r.start),
    ),
  );
  t.same(bad, []);
  // Real-PBX quirk worth knowing before asserting on billing: the queue
  // answers the caller itself, so a queue CDR whose member never answered is
  // NO ANSWER yet has an answer time and billsec > 0. On the PJSIP lab the
  // same happens to an Originate's Local;1 half: answered when the far end
  // of its ;2 half answered, then its own Dial to 3106 was not.
  const unansweredButBilled = CAPTURES.flatMap((n) => readMasterCsv(n)).filter(
    (r) => r.disposition !== 'ANSWERED' && r.billsec !== 0,
  );
  t.same(
    countBy(unansweredButBilled, (r) => `${r.disposition}/${r.lastapp}/${r.channel.split('/')[0]}`),
    { 'NO ANSWER/Queue/SIP': 7, 'NO ANSWER/Dial/Local': 1 },
  );
});

t.test('quoted fields parse intact', async (t) => {
  const rows = readMasterCsv('inbound-pstn');
  const jane = rows.find((r) => r.clid === '"Jane Example" <+447700900123>');
  t.ok(jane, 'clid with a quoted name');
  t.equal(jane?.src, '+447700900123');
  t.equal(jane?.dst, 's', 'inbound calls run through extension s');
  t.equal(jane?.lastdata, 'SIP/1001,4,tT', 'commas inside quotes');
  t.ok(
    rows.some((r) => r.clid === '"+1 (202) 555-0143" <+12025550143>'),
    'number as caller name',
  );
  t.ok(
    rows.some((r) => r.src === '+1 (202) 555-0146'),
    'decoded percent-encoded caller',
  );
  const unanswered = rows.find((r) => r.disposition === 'BUSY');
  t.equal(unanswered?.answer, '', 'unquoted empty answer');
});

t.test('parseMasterCsv on hand-written rows', async (t) => {
  const line =
    '"acme","+447700900123","s","inbound","""O\'Brien, ""Jo"""" <+447700900123>","SIP/trunk-00000024","","Hangup","","2026-11-23 07:21:12",,"2026-11-23 07:21:15",3,0,"NO ANSWER","DOCUMENTATION","pbx-lab-1795418472.36","","","pbx-lab-1795418472.36",40\n';
  const [row] = parseMasterCsv(line);
  t.equal(row?.clid, '"O\'Brien, "Jo"" <+447700900123>');
  t.equal(row?.duration, 3);
  t.equal(row?.billsec, 0);
  t.equal(row?.answer, '');
  t.equal(row?.sequence, '40');
  t.throws(() => parseMasterCsv('"a","b"\n'), /row 1: 2 fields, expected 21/);
  t.throws(() => parseMasterCsv(line.replace(',3,0,', ',x,0,')), /duration is not a whole number/);
});

t.test('readMasterCsv takes a name, a file name or a path, plain or gzipped', async (t) => {
  const byName = readMasterCsv('edge-actions');
  t.same(readMasterCsv('edge-actions.Master.csv'), byName);
  t.same(readMasterCsv(masterCsvFile('edge-actions')), byName);
  const dir = t.testdir({});
  const gz = join(dir, 'copy.Master.csv.gz');
  writeFileSync(gz, gzipSync(readFixture(masterCsvFile('edge-actions'))));
  t.same(readMasterCsv(gz), byName);
});

t.test('needlesForCapture covers capture, plan and Master.csv', async (t) => {
  const outbound = needlesForCapture('outbound-pstn');
  for (const dialled of ['07700900201', '+447700900202', '00447700900203', '902079460250', '2025550105']) {
    t.ok(outbound.numbers.has(dialled), `dialled ${dialled}`);
  }
  t.ok(outbound.numbers.has('+1202555006'), 'the malformed globex caller id');
  t.ok(needlesForCapture('inbound-pstn').names.has('Sam Example'));
  t.equal(needlesForCapture('basic-internal').numbers.size, 0, 'internal calls carry only extensions');
  t.ok(needlesForCapture('basic-internal').names.has('Alice Example'));
});

// From the fixture README ("CEL rows" per capture, and the pjsip-transfers section).
const CEL_ROWS: Record<CaptureName, number> = {
  'basic-internal': 190,
  'inbound-pstn': 454,
  'outbound-pstn': 206,
  'recording-consent': 254,
  'edge-actions': 107,
  'transfers-queue': 106,
  load: 11898,
  'pjsip-transfers': 172,
};

t.test('cel.csv: every capture has one, row counts match the README, one LINKEDID_END per call', async (t) => {
  for (const name of CAPTURES) {
    t.match(basename(celCsvFile(name)), new RegExp(`^${name}\\.cel\\.csv(\\.gz)?$`));
    const rows = readCelCsv(name);
    t.equal(rows.length, CEL_ROWS[name], `${name} CEL rows`);
    const calls = new Set(readMasterCsv(name).map((r) => r.linkedid));
    const ended = rows.filter((r) => r.eventType === 'LINKEDID_END').map((r) => r.linkedId);
    t.same(new Set(ended), calls, `${name}: LINKEDID_END linkedids are the Master.csv linkedids`);
    t.equal(ended.length, calls.size, `${name}: one LINKEDID_END per call`);
    t.ok(
      rows.every((r, i) => i === 0 || r.eventTime >= (rows[i - 1]?.eventTime ?? 0) - 0.01),
      `${name}: event times (nearly) ascend`,
    );
  }
});

t.test('cel.csv transfer events parse, with their Extra JSON', async (t) => {
  const blind = readCelCsv('transfers-queue').filter((r) => r.eventType === 'BLINDTRANSFER');
  t.equal(blind.length, 1);
  t.match(celExtra(blind[0]!), { extension: '1003', transferee_channel_name: 'SIP/1001-000000d8' });
  const attended = readCelCsv('pjsip-transfers').filter((r) => r.eventType === 'ATTENDEDTRANSFER');
  t.equal(attended.length, 1);
  t.match(celExtra(attended[0]!), { transfer_target_channel_name: 'Local/3103@phones-00000000;1' });
  t.equal(celExtra(readCelCsv('basic-internal')[0]!), null, 'CHAN_START has no Extra');
  t.throws(() => parseCelCsv('"CHAN_START","x"\n'), /row 1: 2 fields, expected 21/);
});

t.test('plan.csv: calling side per placed call', async (t) => {
  const plan = readPlan('pjsip-transfers');
  t.same(
    plan.map((p) => p.uac),
    ['phones', 'phones', 'carrier', 'carrier', 'carrier', 'phones'],
  );
  t.same(plan[2], {
    uac: 'carrier',
    fromUser: '+447700900311',
    fromDisplay: '',
    requestUriUser: '+441134960110',
    uacMode: 'xlong',
    extraHeaders: ['X-Info: none', 'X-Info: none'],
  });
  t.equal(readPlan('load').length, 1200);
});
