// The call model's channel and leg bookkeeping, event by event. (Its calls,
// on every real capture, are checked in call-model-fixtures.test.ts.)
import t from 'tap';
import { createCallModel, type CallModelOptions } from '../../src/assemble/call-model.js';
import type { RawCdr } from '../../src/assemble/raw-cdr.js';
import { labRules } from '../helpers/lab-rules.js';
import type { AmiMessage } from '../../src/source/ami-message.js';

const RULES = labRules();

/** The model with `handle` returning the leg record an event produced (if any), and `reconcile` the gap legs. */
function createAssembler(opts: Partial<CallModelOptions> = {}) {
  const legs: RawCdr[] = [];
  const m = createCallModel({ rules: () => RULES.callModel, ...opts });
  m.onLeg((l) => legs.push(l));
  return {
    ...m,
    handle(msg: AmiMessage): RawCdr | undefined {
      const n = legs.length;
      m.handle(msg);
      return legs.length > n ? legs[legs.length - 1] : undefined;
    },
    reconcile(live: ReadonlySet<string>): RawCdr[] {
      const n = legs.length;
      m.reconcile(live);
      return legs.slice(n);
    },
  };
}

const ev = (event: string, f: Record<string, string>): AmiMessage => ({
  event,
  ...Object.fromEntries(Object.entries(f).map(([k, v]) => [k.toLowerCase(), v])),
});

const cdr = (uniqueid: string, over: Record<string, string> = {}) =>
  ev('Cdr', {
    AccountCode: 'acme',
    Source: '07700900123',
    Destination: 's',
    DestinationContext: 'from-trunk',
    CallerID: '"Sam" <07700900123>',
    StartTime: '2026-11-18 10:00:00',
    AnswerTime: '2026-11-18 10:00:02',
    EndTime: '2026-11-18 10:00:10',
    Duration: '10',
    BillableSeconds: '8',
    Disposition: 'ANSWERED',
    UniqueID: uniqueid,
    ...over,
  });

t.test('a Cdr is tied to its call through the Linkedid learnt from channel events', async (t) => {
  const a = createAssembler();
  t.equal(
    a.handle(
      ev('Newchannel', {
        Uniqueid: 'pbx-1795418340.1',
        Linkedid: 'pbx-1795418340.1',
        Exten: '+442079460101',
        AccountCode: '',
      }),
    ),
    undefined,
  );
  a.handle(
    ev('Newchannel', {
      Uniqueid: 'pbx-1795418340.2',
      Linkedid: 'pbx-1795418340.1',
      Exten: '1001',
      AccountCode: 'acme',
    }),
  );
  a.handle(
    ev('VarSet', {
      Uniqueid: 'pbx-1795418340.1',
      Linkedid: 'pbx-1795418340.1',
      Variable: 'X',
      Value: 'y',
      Tenantid: 'acme',
    }),
  );
  a.handle(ev('Newstate', { Uniqueid: 'pbx-1795418340.1', Linkedid: 'pbx-1795418340.1', ChannelStateDesc: 'Up' }));
  a.handle(ev('Hangup', { Uniqueid: 'pbx-1795418340.1', Linkedid: 'pbx-1795418340.1' }));
  const r = a.handle(cdr('pbx-1795418340.1'));
  t.match(r, {
    legId: 'pbx-1795418340.1',
    callId: 'pbx-1795418340.1',
    tenantHint: 'acme',
    accountCode: 'acme',
    dialled: '+442079460101',
    disposition: 'ANSWERED',
    durationSec: 10,
    billSec: 8,
    startedAt: '2026-11-18T10:00:00.000Z',
    answeredAt: '2026-11-18T10:00:02.000Z',
    endedAt: '2026-11-18T10:00:10.000Z',
  });
  t.equal(a.channel('pbx-1795418340.1')?.answered, true);
  t.equal(a.channel('pbx-1795418340.2')?.linkedId, 'pbx-1795418340.1');
  const second = a.handle(cdr('pbx-1795418340.1', { AnswerTime: '', BillableSeconds: '0', Disposition: 'NO ANSWER' }));
  t.not(second?.idTuple, undefined);
  t.notSame(second?.idTuple, r?.idTuple, 'a second CDR of the same leg has its own id tuple');
  t.equal(second?.answeredAt, null);
});

t.test('a Cdr for a channel never seen falls back to its UniqueID and is counted', async (t) => {
  const a = createAssembler();
  const r = a.handle(cdr('pbx-1795418349.9'));
  t.equal(r?.callId, 'pbx-1795418349.9');
  t.equal(a.stats().cdrWithoutChannel, 1);
});

t.test('malformed Cdr events are counted and skipped', async (t) => {
  const a = createAssembler();
  t.equal(a.handle(cdr('')), undefined);
  t.equal(a.handle(cdr('pbx-1795418340.1', { StartTime: 'garbage' })), undefined);
  t.equal(a.handle(cdr('pbx-1795418340.1', { AnswerTime: 'garbage' })), undefined);
  t.equal(
    a.handle(cdr('pbx-1795418340.1', { Duration: '-4' })),
    undefined,
    'a negative duration is not invented into 0',
  );
  t.equal(
    a.handle(cdr('pbx-1795418340.1', { BillableSeconds: '+442079460556' })),
    undefined,
    'a number in a duration field is not copied',
  );
  t.same(a.stats().cdrUnusable, { 'no-uniqueid': 1, 'bad-times': 2, 'bad-durations': 2, 'cel-start-unseen': 0 });
});

t.test('recording state follows MixMonitor and Monitor events; the file name is not kept', async (t) => {
  const a = createAssembler();
  a.handle(ev('Newchannel', { Uniqueid: 'u.1', Linkedid: 'u.1', Exten: '1004' }));
  a.handle(
    ev('VarSet', {
      Uniqueid: 'u.1',
      Linkedid: 'u.1',
      Variable: 'MIXMONITOR_FILENAME',
      Value: '/var/spool/asterisk/monitor/x-07700900123-1004-u.1.wav',
    }),
  );
  a.handle(ev('MixMonitorStart', { Uniqueid: 'u.1', Linkedid: 'u.1' }));
  t.equal(a.channel('u.1')?.recording, 'mixmonitor');
  t.equal(a.channel('u.1')?.recordingFileNamed, true);
  t.notOk(JSON.stringify(a.channel('u.1')).includes('07700900123'), 'path not in state');
  a.handle(ev('MixMonitorStop', { Uniqueid: 'u.1', Linkedid: 'u.1' }));
  t.equal(a.channel('u.1')?.recording, 'none');
});

t.test('state is bounded: a lost Hangup cannot grow memory', async (t) => {
  let clock = 1; // lru-cache treats a start time of 0 as 'no TTL'
  const a = createAssembler({ maxChannels: 100, channelTtlMs: 1000, hangupGraceMs: 100, now: () => clock });
  for (let i = 0; i < 1000; i++) a.handle(ev('Newchannel', { Uniqueid: `c.${i}`, Linkedid: `c.${i}`, Exten: '1001' }));
  t.equal(a.liveChannelCount(), 100, 'capped by maxChannels');
  t.equal(a.stats().channelsEvictedLive, 900);
  clock = 2001;
  t.equal(a.channel('c.999'), undefined, 'expired after the TTL');
  a.handle(ev('Newchannel', { Uniqueid: 'h.1', Linkedid: 'h.1', Exten: '1001' }));
  a.handle(ev('Hangup', { Uniqueid: 'h.1', Linkedid: 'h.1' }));
  clock = 2051;
  t.ok(a.channel('h.1'), 'kept for its Cdr shortly after Hangup');
  clock = 2201;
  t.equal(a.channel('h.1'), undefined, 'gone after the hangup grace');
});

t.test(
  'any id Asterisk can make is accepted (they leave keyed, never raw); only unusable ones are refused',
  async (t) => {
    const { isUsableId, MAX_ASTERISK_ID_LENGTH } = await import('../../src/assemble/asterisk-id.js');
    for (const ok of [
      'pbx-lab-1795418472.36',
      '1795418472.36',
      '195176c06ab8-1529936170.42',
      'pbx.example.com-1795418472.3',
      'tel-447700900204-1795418472.9',
      '2025550143.1',
    ])
      t.ok(isUsableId(ok), ok);
    for (const bad of ['', 'has space.1', 'x'.repeat(MAX_ASTERISK_ID_LENGTH + 1), 'tab\t1.2'])
      t.notOk(isUsableId(bad), bad);
    const a = createAssembler();
    t.not(a.handle(cdr('195176c06ab8-1529936170.42')), undefined, 'a digit-first Docker hostname is a system name');
    t.equal(a.handle(cdr('')), undefined);
    t.equal(a.stats().cdrUnusable['no-uniqueid'], 1);
  },
);

t.test('reconcile after a reconnect: ended-unseen calls are marked, live ones and late Cdrs are not', async (t) => {
  const a = createAssembler({ wallNow: () => new Date('2026-11-23T10:00:00Z') });
  const nc = (u: string, l: string, num = '07700900123') =>
    a.handle(ev('Newchannel', { Uniqueid: u, Linkedid: l, Exten: '1002', CallerIDNum: num }));
  nc('pbx-1795418340.1', 'pbx-1795418340.1'); // ends while we are away
  nc('pbx-1795418340.2', 'pbx-1795418340.1'); // its second leg: no record of its own
  nc('pbx-1795418341.3', 'pbx-1795418341.3'); // still up after the reconnect
  nc('pbx-1795418342.4', 'pbx-1795418342.4'); // hangs up after the reconnect, before the list arrives
  nc('pbx-1795418343.5', 'pbx-1795418343.5'); // ended and got its Cdr before the drop
  a.handle(ev('Hangup', { Uniqueid: 'pbx-1795418343.5', Linkedid: 'pbx-1795418343.5' }));
  a.handle(cdr('pbx-1795418343.5'));
  a.beginResync();
  a.handle(ev('Hangup', { Uniqueid: 'pbx-1795418342.4', Linkedid: 'pbx-1795418342.4' }));
  nc('pbx-1795418344.6', 'pbx-1795418344.6'); // new since the reconnect, not in the (older) list
  const gaps = a.reconcile(new Set(['pbx-1795418341.3']));
  t.same(
    gaps.map((g) => g.legId),
    ['pbx-1795418340.1'],
  );
  t.match(gaps[0], {
    callId: 'pbx-1795418340.1',
    disposition: 'UNKNOWN',
    incomplete: 'ami-gap',
    source: '07700900123',
    startedAt: '2026-11-23T10:00:00.000Z',
    answeredAt: null,
  });
  t.same(a.reconcile(new Set(['pbx-1795418341.3'])), [], 'once only');
  t.not(a.handle(cdr('pbx-1795418342.4'))?.idTuple, undefined, 'the late Cdr is a normal record');
  t.equal(a.stats().gapRecords, 1);
});

t.test('hung-up channels leave the state once their grace has passed, without being read again', async (t) => {
  // Not 0: lru-cache reads a start time of 0 as "no TTL".
  let clock = 1_000;
  const a = createAssembler({ now: () => clock, hangupGraceMs: 120_000 });
  for (let i = 0; i < 500; i++) {
    const id = `pbx-1795418340.${i}`;
    a.handle(ev('Newchannel', { Uniqueid: id, Linkedid: id, Exten: '1001' }));
    a.handle(ev('Hangup', { Uniqueid: id, Linkedid: id }));
  }
  t.equal(a.liveChannelCount(), 500, 'hung-up channels stay for their grace (their Cdr may still come)');
  clock = 122_000;
  // Traffic on other channels only: nothing reads the 500 old entries.
  for (let i = 0; i < 2048; i++)
    a.handle(ev('Newstate', { Uniqueid: 'pbx-1795418999.1', Linkedid: 'pbx-1795418999.1', ChannelStateDesc: 'Ring' }));
  t.equal(a.liveChannelCount(), 1, 'expired channels are swept; the live one stays');
  t.equal(a.stats().channelsEvictedLive, 0, 'a sweep of hung-up channels is not counted as live eviction');
});
