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
