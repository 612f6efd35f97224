// The enforcer shell on synthetic events: joins VarSet and MixMonitorStart
// into one recording, retries a stop that failed, and stops a kept
// recording when a party without consent joins or consent is switched off.
import t from 'tap';
import { callIdOf } from '../../src/privacy/ids.js';
import { createCallModel } from '../../src/assemble/call-model.js';
import { labRules } from '../helpers/lab-rules.js';
import { createConsentEnforcer } from '../../src/consent/enforcer.js';
import { GatewayError } from '../../src/errors.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import type { RawCdr } from '../../src/assemble/raw-cdr.js';

function setup(on: Set<string>, failFirst = false) {
  const rules = labRules();
  const assembler = createCallModel({ rules: () => rules.callModel });
  const actions: Array<Record<string, string>> = [];
  const audit: unknown[] = [];
  let fail = failFirst;
  const enforcer = createConsentEnforcer({
    assembler,
    ami: {
      action: async (f) => {
        actions.push(f);
        if (fail) {
          fail = false;
          throw new GatewayError('GW_AMI_ACTION', 'AMI StopMixMonitor answered Response: Error');
        }
        return {};
      },
    },
    consent: { readable: true, isOn: (tenant, ext) => tenant === 'acme' && on.has(ext) },
    tenantOf: (u) =>
      assembler.tenantOfChannel(u) === 'acme'
        ? { id: 'acme', numbers: { extensionMaxDigits: 6 }, idKey: Buffer.alloc(32, 3) }
        : undefined,
    audit: { append: async (e) => (audit.push(e), e as never) },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const outcomes: string[] = [];
  enforcer.onOutcome((o) => outcomes.push(`${o.callId} ${o.outcome}`));
  const feed = (m: Record<string, string>) => {
    const msg: AmiMessage = { uniqueid: U, linkedid: U, channel: 'SIP/1001-0000009b', accountcode: 'acme', ...m };
    assembler.handle(msg);
    enforcer.handle(msg);
  };
  return { assembler, enforcer, actions, audit, outcomes, feed };
}
const U = 'pbx-lab-1795418520.155';
/** The call id outcomes carry: keyed like the call's records, never the raw Linkedid. */
const C = callIdOf(Buffer.alloc(32, 3), 'acme', U);
const tick = () => new Promise((r) => setImmediate(r));

t.test('VarSet then MixMonitorStart is one recording; a failed stop is retried at the start event', async (t) => {
  const s = setup(new Set(['1001']), true);
  s.feed({ event: 'Newchannel', exten: '1002' });
  s.feed({ event: 'VarSet', variable: '__TARGET_EXT', value: '1002' });
  s.feed({ event: 'VarSet', variable: 'MIXMONITOR_FILENAME', value: '/var/spool/asterisk/monitor/x-07700900123.wav' });
  await tick();
  s.feed({ event: 'MixMonitorStart' });
  await tick();
  t.same(
    s.actions,
    [
      { Action: 'StopMixMonitor', Channel: 'SIP/1001-0000009b' },
      { Action: 'StopMixMonitor', Channel: 'SIP/1001-0000009b' },
    ],
    'sent at the VarSet, again at MixMonitorStart because the first failed',
  );
  t.same(s.outcomes, [`${C} blocked`], 'one recording, one outcome');
  t.equal(s.enforcer.stats().stopsFailed, 1);
  t.notMatch(JSON.stringify(s.audit), /7700|monitor\//, 'no path, no number in the audit entry');
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
  s2.feed({
    event: 'Cdr',
    uniqueid: U,
    starttime: '2026-11-23 07:22:00',
    endtime: '2026-11-23 07:22:09',
    answertime: '',
    duration: '9',
    billableseconds: '0',
    disposition: 'NO ANSWER',
  });
});

t.test('the call record carries the outcome; blocked sticks', async (t) => {
  const rules = labRules();
  const model = createCallModel({ rules: () => rules.callModel });
  const legs: RawCdr[] = [];
  model.onLeg((l) => legs.push(l));
  const a = {
    markRecording: model.markRecording,
    handle: (m: AmiMessage) => {
      const n = legs.length;
      model.handle(m);
      return legs.length > n ? legs.at(-1) : undefined;
    },
  };
  a.handle({ event: 'Newchannel', uniqueid: U, linkedid: U, exten: '1002' });
  a.markRecording(U, 'blocked');
  a.markRecording(U, 'kept');
  const raw = a.handle({
    event: 'Cdr',
    uniqueid: U,
    starttime: '2026-11-23 07:22:00',
    endtime: '2026-11-23 07:22:09',
    answertime: '',
    duration: '9',
    billableseconds: '0',
    disposition: 'NO ANSWER',
  });
  t.equal(raw?.recording, 'blocked');
  const other = 'pbx-lab-1795418521.159';
  const none = a.handle({
    event: 'Cdr',
    uniqueid: other,
    starttime: '2026-11-23 07:22:00',
    endtime: '2026-11-23 07:22:09',
    answertime: '',
    duration: '9',
    billableseconds: '0',
    disposition: 'NO ANSWER',
  });
  t.equal(none?.recording, 'none');
});
