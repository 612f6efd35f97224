// The committed expected tables must be exactly what the derivation makes of
// the ground truth today, and the derivation must agree with facts it does
// not read (the AMI capture's own queue hold times, the fixture README).
import t from 'tap';
import { CAPTURES, readCapture, readMasterCsv, readPlan, type CelCsvRow, type MasterCsvRow } from './ground-truth.js';
import { fixturePath, readFixture } from './ground-truth.js';
import { deriveCapture, expectedFileName } from './expected-derive-capture.js';
import {
  callDirection,
  deriveExpected,
  dialledNumber,
  formatExpected,
  holdTimesFromCapture,
  LABS,
  parseChannel,
} from './expected-derive.js';
import { callById, legKey, partyLabel, readExpected, type ExpectedCall } from './expected-tables.js';

t.test('every committed table is what the derivation produces from the ground truth', async (t) => {
  for (const name of CAPTURES) {
    t.equal(fixturePath(name, 'expected.json').endsWith(expectedFileName(name)), true, `${name} file name`);
    const committed = readFixture(fixturePath(name, 'expected.json')).toString('utf8');
    const derived = formatExpected(deriveCapture(name));
    // Regenerate with: node --import @tapjs/typescript/import test/fixtures/derive-expected.ts
    t.ok(committed === derived, `${name}.expected.json is up to date`);
    t.same(readExpected(name), JSON.parse(derived), `${name} reads back`);
  }
});

t.test('one leg per Master.csv row and one call per linkedid, joined by uniqueid and sequence', async (t) => {
  for (const name of CAPTURES) {
    const table = readExpected(name);
    const rows = readMasterCsv(name);
    t.same(
      table.legs.map((l) => [l.uniqueid, l.sequence, l.linkedid, l.disposition]),
      rows.map((r) => [r.uniqueid, Number(r.sequence), r.linkedid, r.disposition]),
      `${name}: legs in Master.csv order`,
    );
    t.equal(new Set(table.legs.map(legKey)).size, rows.length, `${name}: uniqueid#sequence is a unique key`);
    t.same(
      table.calls.map((c) => c.linkedid).sort(),
      [...new Set(rows.map((r) => r.linkedid))].sort(),
      `${name}: one call per distinct linkedid`,
    );
    const legCount = table.calls.reduce((n, c) => n + c.records, 0);
    t.equal(legCount, rows.length, `${name}: records add up to the rows`);
    t.equal(table.summary.legs, rows.length);
  }
});

t.test('the plan accounts for every call a sipp UAC placed; the rest are Originates', async (t) => {
  for (const name of CAPTURES) {
    const table = readExpected(name);
    const plan = readPlan(name);
    const byOrigin = table.summary.callsByOrigin;
    t.equal((byOrigin.phones ?? 0) + (byOrigin.carrier ?? 0), plan.length, `${name}: every plan row is one call`);
    t.equal(byOrigin.phones ?? 0, plan.filter((p) => p.uac === 'phones').length, `${name}: phones`);
    t.equal(byOrigin.originate ?? 0, name === 'pjsip-transfers' ? 3 : 0, `${name}: Originates`);
    for (const call of table.calls) {
      if (call.origin === 'carrier') t.equal(call.caller.kind, 'external', `${name} ${call.linkedid}: carrier caller`);
      if (call.origin === 'phones') t.equal(call.caller.kind, 'extension', `${name} ${call.linkedid}: phone caller`);
    }
  }
});

t.test('queue wait from cel.csv bounds the HoldTime Asterisk reported over AMI', async (t) => {
  let checked = 0;
  for (const name of CAPTURES) {
    const hold = holdTimesFromCapture(readCapture(name));
    const queued = readExpected(name).calls.filter((c) => c.queue !== null);
    t.equal(queued.length, hold.size, `${name}: one queue call per AMI hold time`);
    for (const c of queued) {
      const q = c.queue;
      t.equal(q?.amiHoldTime, hold.get(c.linkedid), `${name} ${c.linkedid}: HoldTime`);
      // app_queue subtracts whole-second clock readings from Queue() on;
      // cel.csv only knows the channel's start, so its wait adds the dialplan
      // time before Queue() (up to ~1 s in load, where the PBX was busy) and
      // differs by the truncation (under a second either way).
      const gap = (q?.waitSeconds ?? 0) - (q?.amiHoldTime ?? 99);
      t.ok(gap > -1 && gap < 1.5, `${name} ${c.linkedid}: cel wait ${q?.waitSeconds} vs HoldTime ${q?.amiHoldTime}`);
      checked++;
    }
  }
  t.equal(checked, 15, 'queue calls across the fixtures');
  const text =
    'Event: AgentConnect\r\nUniqueid: lab-1.2\r\nHoldTime: 7\r\n\r\nEvent: Hangup\r\nUniqueid: lab-1.3\r\n\r\n';
  t.same([...holdTimesFromCapture(Buffer.from(text))], [['lab-1.2', 7]]);
});

const call = (name: string, linkedid: string): ExpectedCall => {
  const found = callById(readExpected(name)).get(linkedid);
  if (found === undefined) throw new Error(`no call ${linkedid} in ${name}`);
  return found;
};

t.test('transfers-queue: the facts the issue names, from cel.csv', async (t) => {
  const queued = call('transfers-queue', 'pbx-lab-1795418563.220');
  t.same(queued.queue?.memberAttempts, ['1003']);
  t.same(queued.answeredBy, { kind: 'extension', extension: '1003' }, 'queue member, not the queue');
  t.same(
    queued.redirects.map((r) => [partyLabel(r.from), partyLabel(r.to)]),
    [['ext:1003', 'ext:1002']],
  );
  const blind = call('transfers-queue', 'pbx-lab-1795418562.216');
  t.same(
    blind.transfers.map((x) => [x.kind, partyLabel(x.transferer), partyLabel(x.transferee), partyLabel(x.target)]),
    [['blind', 'ext:1002', 'ext:1001', 'ext:1003']],
    '1001 -> 1002, 1002 sends 1001 to 1003',
  );
  t.same(blind.answeredParties.map(partyLabel), ['ext:1002', 'ext:1003'], '1002 appears');
  const failedAtxfer = call('transfers-queue', 'pbx-lab-1795418563.219');
  t.same(failedAtxfer.transfers, [], 'the failed Atxfer left DTMF, no transfer');
  const abandoned = call('transfers-queue', 'pbx-lab-1795418562.215');
  t.equal(abandoned.outcome, 'abandoned');
  t.same(abandoned.queue?.memberAttempts, ['1006', '1006', '1006']);
});

t.test('pjsip-transfers: blind and attended transfers, redirect, queues, Originates', async (t) => {
  const blind = call('pjsip-transfers', 'pbx-lab3-1796186078.202');
  t.same(
    blind.transfers.map((x) => [x.kind, partyLabel(x.transferer), partyLabel(x.transferee), partyLabel(x.target)]),
    [['blind', 'ext:3102', 'ext:3101', 'ext:3103']],
  );
  const attended = call('pjsip-transfers', 'pbx-lab3-1796186080.205');
  t.same(
    attended.transfers.map((x) => [x.kind, partyLabel(x.transferer), partyLabel(x.transferee), partyLabel(x.target)]),
    [['attended', 'ext:3105', 'ext:3102', 'ext:3103']],
    'the target resolves through Local/3103@phones;1',
  );
  t.equal(attended.records, 4);
  t.same(
    call('pjsip-transfers', 'pbx-lab3-1796186082.207').redirects.map((r) => partyLabel(r.to)),
    ['ext:3102'],
  );
  t.same(call('pjsip-transfers', 'pbx-lab3-1796186085.212').queue?.name, 'sales');
  const callback = call('pjsip-transfers', 'pbx-lab3-1796186085.217');
  t.same([callback.origin, callback.direction, callback.outcome], ['originate', 'outbound', 'no-answer']);
  t.same(callback.firstCalled, { kind: 'extension', extension: '3106' });
  const clickToCall = call('pjsip-transfers', 'pbx-lab3-1796186085.220');
  t.same(
    [clickToCall.caller, clickToCall.firstCalled, clickToCall.outcome],
    [{ kind: 'extension', extension: '3108' }, null, 'no-answer'],
  );
  t.same(call('pjsip-transfers', 'pbx-lab3-1796186085.222').outcome, 'pbx-answered');
});

t.test('inbound-pstn: the short 4001 caller on the trunk is external; announcements are PBX-answered', async (t) => {
  const table = readExpected('inbound-pstn');
  const shorts = table.calls.filter((c) => c.caller.kind === 'external' && c.caller.number === '4001');
  t.equal(shorts.length, 2);
  for (const c of shorts) t.same([c.direction, c.answeredBy?.kind], ['inbound', 'extension']);
  const announced = table.calls.filter((c) => c.dialled?.endsWith('90'));
  t.same(
    announced.map((c) => [c.outcome, c.firstCalled?.kind]),
    [
      ['pbx-answered', 'application'],
      ['pbx-answered', 'application'],
    ],
  );
});

t.test('outbound-pstn: every leg names the extension behind the rewritten CLI, as the plan placed it', async (t) => {
  const table = readExpected('outbound-pstn');
  const plan = readPlan('outbound-pstn');
  const rows = readMasterCsv('outbound-pstn');
  for (const [i, leg] of table.legs.entries()) {
    const row = rows[i] as MasterCsvRow;
    t.not(row.src, leg.originatingExtension, 'src is the company CLI, not the extension');
    t.ok(
      plan.some((p) => p.fromUser === leg.originatingExtension),
      'the extension is a From user of the plan',
    );
    t.equal(leg.direction, 'outbound');
  }
  const hangupRows = table.legs.filter((l) => l.lastApp === 'Hangup');
  t.equal(hangupRows.length, 6, 'failed Dial + Hangup() second rows');
  t.ok(
    hangupRows.every((l) => l.bSide === null && l.answeringExtension === null),
    'told apart by lastApp and bSide',
  );
});

t.test('lastApp is the application name only', async (t) => {
  for (const name of CAPTURES) {
    for (const leg of readExpected(name).legs) {
      if (leg.lastApp !== null) t.match(leg.lastApp, /^[A-Za-z0-9]+$/, `${name} ${legKey(leg)}`);
    }
  }
});

// ---------------------------------------------------------------------------
// The rules on hand-written ground truth (fictional values)

const LAB = LABS['pbx-lab'] ?? { trunkPeers: [], extensions: [] };

function row(fields: Partial<MasterCsvRow> & Pick<MasterCsvRow, 'channel' | 'uniqueid' | 'sequence'>): MasterCsvRow {
  return {
    accountcode: 'acme',
    src: '1001',
    dst: '1002',
    dcontext: 'internal',
    clid: '',
    dstchannel: '',
    lastapp: 'Dial',
    lastdata: '',
    start: '2026-11-23 07:00:00',
    answer: '',
    end: '2026-11-23 07:00:05',
    duration: 5,
    billsec: 0,
    disposition: 'NO ANSWER',
    amaflags: 'DOCUMENTATION',
    userfield: '',
    peeraccount: '',
    linkedid: 'lab-100.1',
    ...fields,
  };
}

function cel(
  eventType: string,
  channel: string,
  uniqueId: string,
  eventTime: number,
  more: Partial<CelCsvRow> = {},
): CelCsvRow {
  return {
    eventType,
    eventTime,
    cidName: '',
    cidNum: '',
    ani: '',
    rdnis: '',
    dnid: '',
    exten: '',
    context: '',
    channel,
    appName: '',
    appData: '',
    amaFlags: '',
    accountCode: '',
    uniqueId,
    linkedId: 'lab-100.1',
    peer: '',
    peerAccount: '',
    userField: '',
    extra: '',
    tenantId: '',
    ...more,
  };
}

const outgoing = { appName: 'AppDial', appData: '(Outgoing Line)' };
const hangup = (dialstatus: string, source = ''): Partial<CelCsvRow> => ({
  extra: JSON.stringify({ hangupcause: 16, hangupsource: source, dialstatus }),
});

t.test('rules: channel names and dial strings', async (t) => {
  t.same(parseChannel('SIP/1001-0000000b', LAB), { kind: 'phone', name: 'SIP/1001-0000000b', peer: '1001' });
  t.same(parseChannel('PJSIP/trunk-000000d7', LAB).kind, 'trunk');
  t.same(parseChannel('Local/+441134960999@callback-00000001;2', LAB), {
    kind: 'local',
    name: 'Local/+441134960999@callback-00000001;2',
    instance: 'Local/+441134960999@callback-00000001',
    half: 2,
  });
  t.throws(() => parseChannel('nonsense', LAB), /unrecognised shape/);
  t.equal(dialledNumber('SIP/trunk/07700900999,8,T', LAB), '07700900999');
  t.equal(dialledNumber('PJSIP/+12025550199@trunk,8,T', LAB), '+12025550199');
  t.equal(dialledNumber('SIP/1002,4,tT', LAB), null);
  t.equal(callDirection(['inbound', 'outbound']), 'transit');
  t.equal(callDirection(['internal', 'outbound']), 'outbound');
  t.equal(callDirection(['internal']), 'internal');
});

t.test('rules: trunk to trunk is transit; a Hangup() row inherits the failed Dial before it', async (t) => {
  const master = [
    row({
      channel: 'SIP/trunk-00000001',
      uniqueid: 'lab-100.1',
      sequence: '1',
      dstchannel: 'SIP/trunk-00000002',
      lastdata: 'SIP/trunk/07700900998,8,T',
      disposition: 'BUSY',
    }),
    row({
      channel: 'SIP/trunk-00000001',
      uniqueid: 'lab-100.1',
      sequence: '2',
      lastapp: 'Hangup',
      disposition: 'BUSY',
    }),
  ];
  const celRows = [
    cel('CHAN_START', 'SIP/trunk-00000001', 'lab-100.1', 100, { exten: '02079460999' }),
    cel('CHAN_START', 'SIP/trunk-00000002', 'lab-100.2', 100.1),
    cel('HANGUP', 'SIP/trunk-00000002', 'lab-100.2', 101, { ...outgoing, ...hangup('') }),
    cel('HANGUP', 'SIP/trunk-00000001', 'lab-100.1', 101, hangup('BUSY')),
    cel('LINKEDID_END', 'SIP/trunk-00000001', 'lab-100.1', 101),
  ];
  const plan = [
    {
      uac: 'carrier',
      fromUser: 'x',
      fromDisplay: '',
      requestUriUser: '02079460999',
      uacMode: 'short',
      extraHeaders: [],
    },
  ];
  const table = deriveExpected({
    capture: 'hand',
    systemName: 'lab',
    master,
    cel: celRows,
    plan,
    lab: LAB,
    amiHoldTimes: new Map(),
  });
  t.same(
    table.legs.map((l) => l.direction),
    ['transit', 'transit'],
  );
  t.same([table.calls[0]?.direction, table.calls[0]?.outcome], ['transit', 'busy']);
  t.same(table.calls[0]?.firstCalled, { kind: 'external', number: '07700900998' });
});

t.test('rules: a phone calling out through a Local channel; cancel versus no answer', async (t) => {
  const master = [
    row({
      channel: 'SIP/1001-00000001',
      uniqueid: 'lab-100.1',
      sequence: '1',
      dstchannel: 'Local/0@out-00000001;1',
      disposition: 'NO ANSWER',
    }),
    row({
      channel: 'Local/0@out-00000001;2',
      uniqueid: 'lab-100.3',
      sequence: '2',
      dstchannel: 'SIP/trunk-00000004',
      lastdata: 'SIP/trunk/07700900997,8,T',
      disposition: 'NO ANSWER',
    }),
  ];
  const celRows = (dialstatus: string): CelCsvRow[] => [
    cel('CHAN_START', 'SIP/1001-00000001', 'lab-100.1', 100, { exten: '907700900997' }),
    cel('HANGUP', 'SIP/trunk-00000004', 'lab-100.4', 103, { ...outgoing, ...hangup('') }),
    cel('HANGUP', 'SIP/1001-00000001', 'lab-100.1', 103, hangup(dialstatus, 'SIP/1001-00000001')),
    cel('LINKEDID_END', 'SIP/1001-00000001', 'lab-100.1', 103),
  ];
  const plan = [
    {
      uac: 'phones',
      fromUser: '1001',
      fromDisplay: '',
      requestUriUser: '907700900997',
      uacMode: 'cancel',
      extraHeaders: [],
    },
  ];
  const derive = (dialstatus: string) =>
    deriveExpected({
      capture: 'hand',
      systemName: 'lab',
      master,
      cel: celRows(dialstatus),
      plan,
      lab: LAB,
      amiHoldTimes: new Map(),
    });
  const cancelled = derive('CANCEL');
  t.same(
    cancelled.legs.map((l) => [l.direction, l.originatingExtension, l.bSide]),
    [
      ['outbound', '1001', 'local'],
      ['outbound', '1001', 'trunk'],
    ],
    'the Local half places the call for 1001; both legs reach the trunk',
  );
  t.same([cancelled.calls[0]?.outcome, cancelled.calls[0]?.direction], ['cancelled', 'outbound']);
  t.same(cancelled.calls[0]?.firstCalled, { kind: 'external', number: '07700900997' });
  t.equal(derive('NOANSWER').calls[0]?.outcome, 'no-answer');
});

t.test('rules: a shape the outcome rules do not cover is an error, not a guess', async (t) => {
  const master = [
    row({
      channel: 'SIP/1001-00000001',
      uniqueid: 'lab-100.1',
      sequence: '1',
      dstchannel: 'Local/9@nowhere-00000001;1',
      disposition: 'ANSWERED',
    }),
  ];
  const celRows = [
    cel('CHAN_START', 'SIP/1001-00000001', 'lab-100.1', 100, { exten: '9' }),
    cel('LINKEDID_END', 'SIP/1001-00000001', 'lab-100.1', 101),
  ];
  const plan = [
    { uac: 'phones', fromUser: '1001', fromDisplay: '', requestUriUser: '9', uacMode: 'short', extraHeaders: [] },
  ];
  t.throws(
    () =>
      deriveExpected({
        capture: 'hand',
        systemName: 'lab',
        master,
        cel: celRows,
        plan,
        lab: LAB,
        amiHoldTimes: new Map(),
      }),
    /outcome rules do not cover/,
  );
  t.throws(
    () =>
      deriveExpected({
        capture: 'hand',
        systemName: 'lab',
        master,
        cel: celRows,
        plan: [],
        lab: LAB,
        amiHoldTimes: new Map(),
      }),
    /neither in plan.csv nor started by an Originate/,
  );
});
