// The dialplan gate's UserEvent over TCP: a call whose recording the gate
// prevented has records that say `prevented`; a call next to it without a
// gate decision says `none`; nothing is stopped (nothing was recording).
import t from 'tap';
import { field } from '../../src/source/ami-message.js';
import { PROBE_CHANNEL } from '../../src/consent/stop-probe.js';
import { cdr, channel, type Ev } from './calls.js';
import { consentStack, readRecords, session } from './stack.js';

function inbound(n: number, ext: string, gate: Ev | undefined) {
  const id = `pbx-lab3-17961864${n}0.1`;
  const trunk = channel(id, id, `PJSIP/trunk-000000${n}0`, { AccountCode: 'acme' });
  const phone = channel(`pbx-lab3-17961864${n}0.2`, id, `PJSIP/${ext}-000000${n}1`, { AccountCode: 'acme' });
  return [
    trunk.newchannel('+442079460101'),
    trunk.varset('TARGET', ext),
    ...(gate ? [trunk.ev('UserEvent', gate)] : []),
    phone.newchannel('s'),
    trunk.dial(phone),
    phone.up(),
    phone.bridge(`br-${n}`),
    trunk.bridge(`br-${n}`),
    phone.hangup(),
    trunk.hangup(),
    cdr(trunk, phone, 'acme'),
  ] as Ev[];
}

t.test('a recording the gate prevented: the records say prevented', async (t) => {
  const bytes = session([
    ...inbound(1, '1003', { UserEvent: 'CallveilGate', Verdict: 'prevented', Reason: 'no-consent', Parties: '1' }),
    ...inbound(2, '1003', undefined),
    ...inbound(3, '1001', { UserEvent: 'CallveilGate', Verdict: 'started', Reason: 'consent', Parties: '1' }),
  ]);
  const s = await consentStack(t, { capture: bytes, consent: { acme: { '1001': true } } });
  await s.run();
  const records = readRecords(s.recordsPath);
  const legs = records.filter((r) => r['schemaVersion'] === 2);
  t.same(
    legs.map((r) => r['recording']),
    ['prevented', 'none', 'none'],
    'prevented only where the gate said so; started without a recording event is none',
  );
  t.same(
    s.proxy.actions.filter((a) => /^stop/i.test(field(a.msg, 'action')) && field(a.msg, 'channel') !== PROBE_CHANNEL),
    [],
    'nothing to stop',
  );
});
