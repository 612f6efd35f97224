// The enforcer shell on synthetic events: one recording however many events
// announce it (in every order), one stop and one audit entry; a stop counts
// when Asterisk confirms it; a kept recording is stopped when a party without
// consent joins or consent is switched off.
import t from 'tap';
import { callIdOf } from '../../src/privacy/ids.js';
import { createCallModel } from '../../src/assemble/call-model.js';
import { labRules } from '../helpers/lab-rules.js';
import { createConsentEnforcer } from '../../src/consent/enforcer.js';
import { actionRejected } from '../../src/source/ami-client.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import type { RawCdr } from '../../src/assemble/raw-cdr.js';

interface AuditEntryLike {
  action: string;
  tenant: string;
  detail: Record<string, unknown>;
}

function setup(on: Set<string>, opts: { refuse?: string; confirmTimeoutMs?: number } = {}) {
  const rules = labRules();
  const assembler = createCallModel({ rules: () => rules.callModel });
  const actions: Array<Record<string, string>> = [];
  const audit: AuditEntryLike[] = [];
  const errors: string[] = [];
  const health: Array<{ ok: boolean; reason?: string }> = [];
  const enforcer = createConsentEnforcer({
    assembler,
    ami: {
      action: async (f) => {
        actions.push(f);
        if (opts.refuse !== undefined)
          throw actionRejected('StopMixMonitor', { response: 'Error', message: opts.refuse });
        return {};
      },
    },
    consent: { readable: true, isOn: (tenant, ext) => tenant === 'acme' && on.has(ext) },
    tenantOf: (u) => (assembler.tenantOfChannel(u) === 'acme' ? { id: 'acme', idKey: Buffer.alloc(32, 3) } : undefined),
    audit: { append: async (e) => (audit.push(e as AuditEntryLike), e as never) },
    log: {
      info: () => undefined,
      warn: () => undefined,
      error: ((_o: unknown, m: string) => void errors.push(m)) as never,
    },
    health: { set: (_p, s) => void health.push(s) },
    confirmTimeoutMs: opts.confirmTimeoutMs ?? 200,
    startWaitMs: 20,
  });
  const outcomes: string[] = [];
  enforcer.onOutcome((o) => outcomes.push(`${o.callId} ${o.outcome}`));
  const feed = (m: Record<string, string>, u = U, channel = 'SIP/1001-0000009b') => {
    const msg: AmiMessage = { uniqueid: u, linkedid: U, channel, accountcode: 'acme', ...m };
    assembler.handle(msg);
    enforcer.handle(msg);
  };
  return { assembler, enforcer, actions, audit, outcomes, feed, errors, health };
}
const U = 'pbx-lab-1795418520.155';
/** The call id outcomes carry: keyed like the call's records, never the raw Linkedid. */
const C = callIdOf(Buffer.alloc(32, 3), 'acme', U);
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
const stops = (a: Array<Record<string, string>>) => a.filter((x) => /^Stop/.test(x['Action'] ?? ''));

t.test('one recording, one stop, one audit entry, whatever order its events come in', async (t) => {
  const announce = {
    varset: {
      event: 'VarSet',
      variable: 'MIXMONITOR_FILENAME',
      value: '/var/spool/asterisk/monitor/x-07700900123.wav',
    },
    start: { event: 'MixMonitorStart' },
    target: { event: 'VarSet', variable: '__TARGET_EXT', value: '1002' },
    dial: { event: 'DialBegin', destchannel: 'SIP/1002-0000009d', destuniqueid: 'pbx-lab-1795418520.157' },
  } as const;
  const names = Object.keys(announce) as Array<keyof typeof announce>;
  const orders: Array<Array<keyof typeof announce>> = [];
  const permute = (rest: typeof names, done: typeof names): void => {
    if (rest.length === 0) orders.push(done);
    for (const n of rest)
      permute(
        rest.filter((x) => x !== n),
        [...done, n],
      );
  };
  permute(names, []);
  t.equal(orders.length, 24);
  for (const order of orders) {
    // 1001 (and the 8100 it dialled) consent, 1002 does not: blocked as soon as 1002 is known.
    const s = setup(new Set(['1001', '8100']));
    s.feed({ event: 'Newchannel', exten: '8100' });
    for (const n of order) s.feed(announce[n]);
    // A late re-announcement and a re-evaluation change nothing.
    s.feed(announce.varset);
    s.enforcer.reevaluate('acme');
    await tick(30);
    s.feed({ event: 'MixMonitorStop' });
    await tick();
    const label = order.join(' > ');
    t.same(stops(s.actions), [{ Action: 'StopMixMonitor', Channel: 'SIP/1001-0000009b' }], `one stop: ${label}`);
    const stopAt = s.actions.indexOf(stops(s.actions)[0]!);
    t.equal(stopAt, 0, `nothing else sent: ${label}`);
    t.same(
      s.audit.map((e) => `${e.action} ${String(e.detail['stop'])}`),
      ['recording.blocked confirmed'],
      `one audit entry: ${label}`,
    );
    t.equal(s.outcomes.filter((o) => o.endsWith('blocked')).length, 1, `one blocked outcome: ${label}`);
    t.equal(
      s.outcomes.length,
      order.indexOf('varset') < Math.min(order.indexOf('target'), order.indexOf('dial')) ||
        order.indexOf('start') < Math.min(order.indexOf('target'), order.indexOf('dial'))
        ? 2
        : 1,
      `kept first only while 1002 was unknown: ${label}`,
    );
    t.equal(s.enforcer.stats().stopsConfirmed, 1, label);
    t.notMatch(JSON.stringify(s.audit), /7700|monitor\//, 'no path, no number in the audit entry');
  }
});

t.test('the stop waits for MixMonitorStart after the file name; without one it goes anyway', async (t) => {
  const s = setup(new Set());
  s.feed({ event: 'Newchannel', exten: '1002' });
  s.feed({ event: 'VarSet', variable: 'MIXMONITOR_FILENAME', value: 'x.wav' });
  t.same(stops(s.actions), [], 'not yet: the audio hook is attached after the VarSet');
  s.feed({ event: 'MixMonitorStart' });
  t.equal(stops(s.actions).length, 1, 'sent at MixMonitorStart');

  const s2 = setup(new Set());
  s2.feed({ event: 'Newchannel', exten: '1002' });
  s2.feed({ event: 'VarSet', variable: 'MIXMONITOR_FILENAME', value: 'x.wav' });
  await tick(40);
  t.equal(stops(s2.actions).length, 1, 'no MixMonitorStart (filtered out): sent after the wait');
});

t.test('a stop counts when Asterisk confirms it; refused or unconfirmed it is stop-failed', async (t) => {
  const legsOf = (s: ReturnType<typeof setup>) => {
    const legs: RawCdr[] = [];
    s.assembler.onLeg((l) => legs.push(l));
    return legs;
  };
  const cdr = {
    event: 'Cdr',
    starttime: '2026-11-23 07:22:00',
    endtime: '2026-11-23 07:22:09',
    answertime: '',
    duration: '9',
    billableseconds: '0',
    disposition: 'NO ANSWER',
  };
  // Refused: Permission denied (a user without write=call).
  const s = setup(new Set(), { refuse: 'Permission denied' });
  const legs = legsOf(s);
  s.feed({ event: 'Newchannel', exten: '1002' });
  s.feed({ event: 'VarSet', variable: 'MIXMONITOR_FILENAME', value: 'x.wav' });
  s.feed({ event: 'MixMonitorStart' });
  await tick();
  s.feed({ event: 'Hangup' });
  s.feed(cdr);
  t.equal(legs[0]?.recording, 'stop-failed', 'the record says stop-failed');
  t.same(
    s.audit.map((e) => [e.action, e.detail['stop']]),
    [['recording.stop-failed', 'not-permitted']],
    'the audit entry says so',
  );
  t.equal(s.errors.length, 1, 'one ERROR');
  t.match(s.errors[0], /write=call/, 'naming the missing privilege');
  t.same(s.health.at(-1), { ok: false, reason: 'stop-not-permitted' }, 'consent health failing');

  // Unconfirmed: Success, but no MixMonitorStop before the timeout.
  const s2 = setup(new Set(), { confirmTimeoutMs: 30 });
  s2.feed({ event: 'Newchannel', exten: '1002' });
  s2.feed({ event: 'VarSet', variable: 'MIXMONITOR_FILENAME', value: 'x.wav' });
  s2.feed({ event: 'MixMonitorStart' });
  await tick(60);
  t.same(
    s2.audit.map((e) => [e.action, e.detail['stop']]),
    [['recording.stop-failed', 'unconfirmed']],
  );
  t.same(s2.health.at(-1), { ok: false, reason: 'stop-unconfirmed' });
  // A second recording of the same call failing again: still one ERROR for the call.
  s2.feed({ event: 'VarSet', variable: 'MIXMONITOR_FILENAME', value: 'y.wav' });
  s2.feed({ event: 'MixMonitorStart' });
  await tick(60);
  t.equal(s2.errors.length, 1, 'one ERROR per call');
  // Confirmed: Success and the event, in either order; health back to ok.
  s2.feed({ event: 'VarSet', variable: 'MIXMONITOR_FILENAME', value: 'z.wav' });
  s2.feed({ event: 'MixMonitorStart' });
  s2.feed({ event: 'MixMonitorStop' });
  await tick();
  t.same(s2.health.at(-1), { ok: true });
  t.equal(s2.audit.at(-1)?.action, 'recording.blocked');
});

t.test('a kept recording is stopped when a party without consent joins, or consent is switched off', async (t) => {
  const on = new Set(['1001', '1002']);
  const s = setup(on);
  s.feed({ event: 'Newchannel', exten: '1002' });
  s.feed({ event: 'VarSet', variable: '__TARGET_EXT', value: '1002' });
  s.feed({ event: 'VarSet', variable: 'MIXMONITOR_FILENAME', value: 'x.wav' });
  s.feed({ event: 'MixMonitorStart' });
  s.feed({ event: 'DialBegin', destchannel: 'SIP/1002-0000009d', destuniqueid: 'pbx-lab-1795418520.157' });
  t.same(s.actions, [], 'every party consents: kept');
  s.feed({ event: 'DialBegin', destchannel: 'SIP/1006-0000009e', destuniqueid: 'pbx-lab-1795418520.158' });
  t.same(
    s.actions.map((a) => a.Action),
    ['StopMixMonitor'],
    '1006 joined without consent',
  );
  t.same(s.outcomes, [`${C} kept`, `${C} blocked`]);

  const s2 = setup(on);
  s2.feed({ event: 'Newchannel', exten: '1002' });
  s2.feed({ event: 'MonitorStart' });
  t.same(s2.actions, []);
  on.delete('1002');
  s2.enforcer.reevaluate('acme');
  t.same(s2.actions, [{ Action: 'StopMonitor', Channel: 'SIP/1001-0000009b' }], 'consent switched off mid-call');
  s2.enforcer.reevaluate('acme');
  t.equal(s2.actions.length, 1, 'stopped once');
});

t.test('the call record carries the outcome; the worst sticks', async (t) => {
  const rules = labRules();
  const model = createCallModel({ rules: () => rules.callModel });
  const legs: RawCdr[] = [];
  model.onLeg((l) => legs.push(l));
  const cdr = (uniqueid: string) => ({
    event: 'Cdr',
    uniqueid,
    starttime: '2026-11-23 07:22:00',
    endtime: '2026-11-23 07:22:09',
    answertime: '',
    duration: '9',
    billableseconds: '0',
    disposition: 'NO ANSWER',
  });
  model.handle({ event: 'Newchannel', uniqueid: U, linkedid: U, exten: '1002' });
  model.markRecording(U, 'blocked');
  model.markRecording(U, 'kept');
  model.handle(cdr(U));
  t.equal(legs.at(-1)?.recording, 'blocked');
  model.markRecording(U, 'stop-failed');
  model.markRecording(U, 'blocked');
  model.handle(cdr(U));
  t.equal(legs.at(-1)?.recording, 'stop-failed');
  model.handle(cdr('pbx-lab-1795418521.159'));
  t.equal(legs.at(-1)?.recording, 'none');
});
