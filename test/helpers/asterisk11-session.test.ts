// The hand-written Asterisk 11 session must be well-framed AMI, shaped like
// Asterisk 11 (events and fields of that version, no Linkedid on channel
// events), agree with its hand-written expected table, and be stitchable into
// calls from channel events alone, the way a gateway must do it.
import t from 'tap';
import { readCapture } from './ground-truth.js';
import { readExpected } from './expected-tables.js';
import { summarise } from './expected-derive.js';
import { eventName, header, messageHeaders, splitCapture } from './capture-variants.js';

const NAME = 'asterisk11-session';
const bytes = readCapture(NAME);
const { greeting, messages } = splitCapture(bytes);
const events = messages.filter((m) => eventName(m) !== undefined);
const named = (name: string): string[] => events.filter((m) => eventName(m) === name);
const expected = readExpected(NAME);

t.test('framing: greeting 1.3, CRLF only, one blank line after each message', async (t) => {
  t.equal(greeting, 'Asterisk Call Manager/1.3');
  const text = bytes.toString('latin1');
  t.equal(text.match(/(?<!\r)\n/g), null, 'no bare LF');
  t.equal(text.match(/\r(?!\n)/g), null, 'no bare CR');
  t.notMatch(text, /\r\n\r\n\r\n/, 'never two blank lines');
  t.match(text, /^[\x20-\x7e\r\n]*$/, 'ASCII only');
  for (const m of messages) {
    t.ok(
      messageHeaders(m).every(([k, v]) => /^[A-Za-z][A-Za-z0-9-]*$/.test(k) && !v.includes('\r')),
      `Key: Value lines (${eventName(m) ?? header(m, 'Response')})`,
    );
  }
  t.match(messages[0], /^Response: Success\r\nActionID: login-1\r\nMessage: Authentication accepted$/);
  t.match(messages.at(-1), /^Response: Goodbye\r\n/);
});

// Field lists as Asterisk 11 writes them (sources in the fixture README).
const FIELDS: Record<string, string[]> = {
  Newchannel: [
    'Channel',
    'ChannelState',
    'ChannelStateDesc',
    'CallerIDNum',
    'CallerIDName',
    'AccountCode',
    'Exten',
    'Context',
    'Uniqueid',
  ],
  Newstate: [
    'Channel',
    'ChannelState',
    'ChannelStateDesc',
    'CallerIDNum',
    'CallerIDName',
    'ConnectedLineNum',
    'ConnectedLineName',
    'Uniqueid',
  ],
  Hangup: [
    'Channel',
    'Uniqueid',
    'CallerIDNum',
    'CallerIDName',
    'ConnectedLineNum',
    'ConnectedLineName',
    'AccountCode',
    'Cause',
    'Cause-txt',
  ],
  Bridge: ['Bridgestate', 'Bridgetype', 'Channel1', 'Channel2', 'Uniqueid1', 'Uniqueid2', 'CallerID1', 'CallerID2'],
  Masquerade: ['Clone', 'CloneState', 'Original', 'OriginalState'],
  Rename: ['Channel', 'Newname', 'Uniqueid'],
  NewCallerid: ['Channel', 'CallerIDNum', 'CallerIDName', 'Uniqueid', 'CID-CallingPres'],
  LocalBridge: ['Channel1', 'Channel2', 'Uniqueid1', 'Uniqueid2', 'Context', 'Exten', 'LocalOptimization'],
  Cdr: [
    'AccountCode',
    'Source',
    'Destination',
    'DestinationContext',
    'CallerID',
    'Channel',
    'DestinationChannel',
    'LastApplication',
    'LastData',
    'StartTime',
    'AnswerTime',
    'EndTime',
    'Duration',
    'BillableSeconds',
    'Disposition',
    'AMAFlags',
    'UniqueID',
    'UserField',
  ],
  CEL: [
    'EventName',
    'AccountCode',
    'CallerIDnum',
    'CallerIDname',
    'CallerIDani',
    'CallerIDrdnis',
    'CallerIDdnid',
    'Exten',
    'Context',
    'Channel',
    'Application',
    'AppData',
    'EventTime',
    'AMAFlags',
    'UniqueID',
    'LinkedID',
    'Userfield',
    'Peer',
    'PeerAccount',
    'Extra',
  ],
  Join: [
    'Channel',
    'CallerIDNum',
    'CallerIDName',
    'ConnectedLineNum',
    'ConnectedLineName',
    'Queue',
    'Position',
    'Count',
    'Uniqueid',
  ],
  Leave: ['Channel', 'Queue', 'Count', 'Position', 'Uniqueid'],
  AgentConnect: ['Queue', 'Uniqueid', 'Channel', 'Member', 'MemberName', 'HoldTime', 'BridgedChannel', 'RingTime'],
};

t.test('Asterisk 11 shape: its events and fields, no Linkedid on channel events, no Asterisk 12+ events', async (t) => {
  for (const [event, fields] of Object.entries(FIELDS)) {
    const list = named(event);
    t.ok(list.length > 0, `${event} present`);
    for (const m of list) {
      const keys = messageHeaders(m).map(([k]) => k);
      t.same(keys.slice(2), fields, `${event} fields`);
    }
  }
  const dials = named('Dial');
  t.same(new Set(dials.map((m) => header(m, 'SubEvent'))), new Set(['Begin', 'End']), 'Dial with SubEvent');
  t.equal(
    events.filter((m) => messageHeaders(m).some(([k]) => /Linkedid$/.test(k))).length,
    0,
    'no Linkedid header anywhere; only CEL carries LinkedID',
  );
  const v12 = [
    'DialBegin',
    'DialEnd',
    'BridgeEnter',
    'BridgeLeave',
    'BridgeCreate',
    'QueueCallerJoin',
    'BlindTransfer',
  ];
  t.same(
    events.filter((m) => v12.includes(eventName(m) ?? '')),
    [],
    'no AMI v2 events',
  );
  t.equal(events.filter((m) => header(m, 'SystemName') !== undefined).length, 0, 'no systemname set');
  t.ok(
    named('Newchannel').every((m) => /^\d+\.\d+$/.test(header(m, 'Uniqueid') ?? '')),
    'plain <epoch>.<n> ids (no system name)',
  );
});

t.test('the Cdr events are the expected legs, in order', async (t) => {
  const cdrs = named('Cdr');
  t.equal(cdrs.length, expected.legs.length);
  for (const [i, leg] of expected.legs.entries()) {
    const m = cdrs[i] ?? '';
    t.same(
      [header(m, 'UniqueID'), header(m, 'LastApplication'), header(m, 'Disposition')],
      [leg.uniqueid, leg.lastApp ?? '', leg.disposition],
      `leg ${leg.sequence}`,
    );
    t.equal(leg.sequence, i + 1, 'sequence is the Cdr event order (Asterisk 11 Cdr events carry none)');
  }
  t.same(expected.summary, summarise(expected.legs, expected.calls), 'summary agrees with the rows');
});

/** Union-find over Uniqueids, linked only by what Asterisk 11 channel events say. */
function stitch(): Map<string, string> {
  const parent = new Map<string, string>();
  const find = (u: string): string => {
    let root = u;
    while (parent.has(root) && parent.get(root) !== root) root = parent.get(root) as string;
    parent.set(u, root);
    return root;
  };
  const link = (a: string | undefined, b: string | undefined): void => {
    if (a === undefined || b === undefined || a === '' || b === '') return;
    parent.set(find(a), find(b));
  };
  const byName = new Map<string, string>();
  for (const m of events) {
    switch (eventName(m)) {
      case 'Newchannel':
        byName.set(header(m, 'Channel') ?? '', header(m, 'Uniqueid') ?? '');
        find(header(m, 'Uniqueid') ?? '');
        break;
      case 'Rename':
        byName.set(header(m, 'Newname') ?? '', header(m, 'Uniqueid') ?? '');
        break;
      case 'Dial':
        if (header(m, 'SubEvent') === 'Begin') link(header(m, 'UniqueID'), header(m, 'DestUniqueID'));
        break;
      case 'Bridge':
      case 'LocalBridge':
        link(header(m, 'Uniqueid1'), header(m, 'Uniqueid2'));
        break;
      case 'Masquerade':
        link(byName.get(header(m, 'Clone') ?? ''), byName.get(header(m, 'Original') ?? ''));
        break;
      case 'AgentCalled':
        link(byName.get(header(m, 'ChannelCalling') ?? ''), byName.get(header(m, 'DestinationChannel') ?? ''));
        break;
    }
  }
  return new Map([...parent.keys()].map((u) => [u, find(u)]));
}

t.test(
  'stitching from Dial, Bridge, LocalBridge, Masquerade and AgentCalled alone gives the expected calls',
  async (t) => {
    const roots = stitch();
    const groups = new Map<string, Set<string>>();
    for (const m of named('Cdr')) {
      const uid = header(m, 'UniqueID') ?? '';
      const root = roots.get(uid) ?? uid;
      groups.set(root, (groups.get(root) ?? new Set()).add(uid));
    }
    const want = expected.calls.map((c) => new Set(c.legs.map((l) => l.uniqueid)));
    t.same(
      [...groups.values()].map((g) => [...g].sort()).sort(),
      want.map((g) => [...g].sort()).sort(),
      'Cdr UniqueIDs grouped into the expected calls',
    );
    const originate = expected.calls.find((c) => c.origin === 'originate');
    const channels = [...roots.entries()].filter(([, r]) => r === roots.get(originate?.linkedid ?? ''));
    t.equal(channels.length, 4, 'the Originate: two Local halves and two real channels, one call');
    // CEL's LinkedID, the other Asterisk 11 source, groups every channel the same way.
    const byLinked = new Map<string, string>();
    for (const m of named('CEL')) byLinked.set(header(m, 'UniqueID') ?? '', header(m, 'LinkedID') ?? '');
    for (const [uid, root] of roots) {
      const linked = byLinked.get(uid);
      t.ok(
        linked !== undefined && [...roots.entries()].every(([u, r]) => (r === root) === (byLinked.get(u) === linked)),
        `${uid}: same call by CEL LinkedID`,
      );
    }
    t.same(
      new Set(expected.calls.map((c) => c.linkedid)),
      new Set(byLinked.values()),
      'call ids are the CEL LinkedIDs',
    );
  },
);

t.test('the masquerade: the transferee keeps its name, its Uniqueid changes, the Cdr keeps the old one', async (t) => {
  const [masq] = named('Masquerade');
  t.equal(header(masq ?? '', 'Clone'), 'SIP/trunk-00000007');
  t.same(
    named('Rename').map((m) => [header(m, 'Channel'), header(m, 'Newname')]),
    [
      ['SIP/trunk-00000007', 'SIP/trunk-00000007<MASQ>'],
      ['Transfered/SIP/trunk-00000007', 'SIP/trunk-00000007'],
      ['SIP/trunk-00000007<MASQ>', 'Transfered/SIP/trunk-00000007<ZOMBIE>'],
    ],
  );
  const finalHangup = named('Hangup').find((m) => header(m, 'Channel') === 'SIP/trunk-00000007');
  t.equal(header(finalHangup ?? '', 'Uniqueid'), '1795600100.12', 'the name now carries the Transfered/ channel id');
  const transfer = expected.calls.find((c) => c.transfers.length > 0);
  t.same(
    transfer?.legs.map((l) => l.uniqueid),
    ['1795600080.10', '1795600080.9', '1795600080.9'],
    'Cdr events keep the pre-masquerade UniqueID',
  );
});

t.test('every phone number in the session is fictional', async (t) => {
  const allowed = [
    /^\+?(?:44|0)7700900\d{3}$/,
    /^(?:\+44|0)207946\d{4}$/,
    /^9?(?:\+44|0)1134960\d{3}$/,
    /^(?:\+44|0)20794606\d{2}$/,
    /^\+?1?202555\d{4}$/,
  ];
  const fields =
    /^(?:CallerIDNum|CallerIDnum|ConnectedLineNum|Exten|Extension|Source|Destination|Dialstring|LastData|CallerID\d?|CallerIDdnid|AppData|Value|CallerID)$/;
  const numbers = new Set<string>();
  for (const m of events) {
    for (const [k, v] of messageHeaders(m)) {
      if (!fields.test(k)) continue;
      // Channel names end in a hex counter (SIP/2102-00000002), which is not a number.
      for (const n of v.replace(/-[0-9a-f]{8}\b/g, '').match(/\+?\d{7,}/g) ?? []) numbers.add(n);
    }
  }
  t.ok(numbers.size >= 8, `${numbers.size} numbers found`);
  for (const n of numbers)
    t.ok(
      allowed.some((re) => re.test(n)),
      `${n} is in a fictional range`,
    );
});
