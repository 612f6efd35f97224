// Synthetic AMI calls for consent tests over TCP: events shaped as Asterisk 22
// with PJSIP sends them (fields the gateway reads, plus their usual company),
// for the cases no real capture holds.
export type Ev = Record<string, string>;

/** One channel's events, bound to its Uniqueid, Linkedid and name. */
export function channel(uniqueid: string, linkedid: string, name: string, common: Ev = {}) {
  const base = (event: string, extra: Ev = {}): Ev => ({
    Event: event,
    Channel: name,
    ChannelState: '6',
    ChannelStateDesc: 'Up',
    Context: common['Context'] ?? 'phones',
    Exten: 's',
    Priority: '1',
    Uniqueid: uniqueid,
    Linkedid: linkedid,
    ...common,
    ...extra,
  });
  return {
    uniqueid,
    name,
    newchannel: (exten: string, extra: Ev = {}) =>
      base('Newchannel', { ChannelState: '0', ChannelStateDesc: 'Down', Exten: exten, ...extra }),
    varset: (variable: string, value: string) => base('VarSet', { Variable: variable, Value: value }),
    recording: (file: string) => [
      base('VarSet', { Variable: 'MIXMONITOR_FILENAME', Value: file }),
      base('MixMonitorStart'),
    ],
    dial: (dest: { uniqueid: string; name: string }) =>
      base('DialBegin', { DestChannel: dest.name, DestUniqueid: dest.uniqueid, DialString: dest.name.split('-')[0]! }),
    up: () => base('Newstate', { ChannelState: '6', ChannelStateDesc: 'Up' }),
    bridge: (id: string) => base('BridgeEnter', { BridgeUniqueid: id, BridgeType: 'basic' }),
    leave: (id: string) => base('BridgeLeave', { BridgeUniqueid: id }),
    hangup: () => base('Hangup', { Cause: '16', 'Cause-txt': 'Normal Clearing' }),
    ev: base,
  };
}

/** The Cdr event of a leg (times fixed: the test is about the recording outcome). */
export function cdr(a: { uniqueid: string; name: string }, b: { name: string } | undefined, accountCode = ''): Ev {
  return {
    Event: 'Cdr',
    AccountCode: accountCode,
    Source: '',
    Destination: 's',
    DestinationContext: 'phones',
    CallerID: '',
    Channel: a.name,
    DestinationChannel: b?.name ?? '',
    LastApplication: 'Dial',
    LastData: '',
    StartTime: '2026-12-02 04:34:38',
    AnswerTime: '2026-12-02 04:34:39',
    EndTime: '2026-12-02 04:34:48',
    Duration: '10',
    BillableSeconds: '9',
    Disposition: 'ANSWERED',
    AMAFlags: 'DOCUMENTATION',
    UniqueID: a.uniqueid,
    UserField: '',
  };
}

/** Where a text first occurs in a session's body (after the greeting and the Login response). */
export function bodyOffset(session: Buffer, text: string): number {
  const bodyStart = session.indexOf('Authentication accepted\r\n\r\n') + 'Authentication accepted\r\n\r\n'.length;
  const i = session.indexOf(text, bodyStart);
  if (i < 0) throw new Error(`not in the session: ${text}`);
  // The start of the message holding it.
  return session.lastIndexOf('\r\n\r\n', i) + 4 - bodyStart;
}

/**
 * A synthetic AMI session: the greeting, the Login response and the given
 * events, framed as Asterisk frames them (for cases no real capture has).
 */
export function session(
  events: ReadonlyArray<Record<string, string>>,
  greeting = 'Asterisk Call Manager/11.0.0',
): Buffer {
  const frame = (m: Record<string, string>) =>
    Object.entries(m)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') + '\r\n';
  return Buffer.from(
    `${greeting}\r\n` +
      frame({ Response: 'Success', Message: 'Authentication accepted' }) +
      events.map((e) => frame({ Privilege: 'call,all', ...e })).join(''),
  );
}

/** 20,000 junk TARGET VarSets on a channel with a recording (issue: work per event must stay bounded). */
export const JUNK_VARSETS = 20_000;

/** Junk that cannot name a party, or (digits) junk that could. */
const JUNK = {
  text: (i: number) => `x${i.toString(36)}-${(i * 7919).toString(16)}`,
  digits: (i: number) => String(100_000 + i),
};

export function hostileSession(junk = JUNK_VARSETS, kind: keyof typeof JUNK = 'text'): Buffer {
  const id = 'pbx-lab3-1796186700.1';
  const trunk = channel(id, id, 'PJSIP/trunk-00000070', { AccountCode: 'acme' });
  const phone = channel('pbx-lab3-1796186700.2', id, 'PJSIP/1001-00000071', { AccountCode: 'acme' });
  return session([
    trunk.newchannel('+442079460101'),
    trunk.varset('TARGET', '1001'),
    ...trunk.recording('/var/spool/asterisk/monitor/+447700900123-1001.wav'),
    phone.newchannel('s'),
    trunk.dial(phone),
    phone.up(),
    phone.bridge('br-7'),
    trunk.bridge('br-7'),
    ...Array.from({ length: junk }, (_, i) => trunk.varset('TARGET', JUNK[kind](i))),
    phone.hangup(),
    trunk.hangup(),
    cdr(trunk, phone, 'acme'),
  ]);
}
