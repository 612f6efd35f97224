// Recordings in progress at login (start and every reconnect), over TCP with
// the test AMI server answering Status with Variables as Asterisk 22 does:
// they are found, judged like new ones, stopped when a party lacks consent,
// and their records say kept / blocked.
import t from 'tap';
import { field } from '../../src/source/ami-message.js';
import { PROBE_CHANNEL } from '../../src/consent/stop-probe.js';
import { cdr, channel, type Ev } from './calls.js';
import { bodyOffset, consentStack, readRecords, session, type Stack } from './stack.js';

const PACED = { chunking: 'recorded', pauseBetweenChunksMs: 5 } as const;
const stopsOf = (s: Stack) =>
  s.proxy.actions
    .filter((a) => /^stop/i.test(field(a.msg, 'action')) && field(a.msg, 'channel') !== PROBE_CHANNEL)
    .map((a) => field(a.msg, 'channel'));

/** An inbound call recorded on its trunk channel, for extension `ext` (acme), answered and bridged. */
function inbound(n: number, ext: string) {
  const id = `pbx-lab3-17961863${n}0.1`;
  const trunk = channel(id, id, `PJSIP/trunk-000000${n}0`, { AccountCode: 'acme' });
  const phone = channel(`pbx-lab3-17961863${n}0.2`, id, `PJSIP/${ext}-000000${n}1`, { AccountCode: 'acme' });
  return {
    trunk,
    start: [
      trunk.newchannel('+442079460101'),
      trunk.varset('TARGET', ext),
      ...trunk.recording(`/var/spool/asterisk/monitor/+447700900123-${ext}-${n}.wav`),
      phone.newchannel('s'),
      trunk.dial(phone),
      phone.up(),
      phone.bridge(`br-${n}`),
      trunk.bridge(`br-${n}`),
    ] as Ev[],
    end: [phone.hangup(), trunk.hangup(), cdr(trunk, phone, 'acme')] as Ev[],
  };
}

t.test('recordings running when the gateway logs in are judged: kept and stopped', async (t) => {
  const kept = inbound(1, '1001');
  const refused = inbound(2, '1003');
  const bytes = session([
    ...kept.start,
    ...refused.start,
    // The gateway connects here.
    kept.trunk.ev('Newstate'),
    ...Array.from({ length: 20 }, () => refused.trunk.ev('RTCPSent')),
    ...kept.end,
    ...refused.end,
  ]);
  const s = await consentStack(t, {
    capture: bytes,
    consent: { acme: { '1001': true } },
    replay: { ...PACED, startAtBytes: bodyOffset(bytes, 'Event: Newstate\r\nChannel: PJSIP/trunk-00000010') },
  });
  await s.run();
  t.same(stopsOf(s), ['PJSIP/trunk-00000020'], 'only the recording without consent is stopped');
  t.match(
    s.server.actionsReceived().find((a) => a.action === 'Status'),
    { variables: /MIXMONITOR_FILENAME/ },
    'Status asked with Variables',
  );
  t.same(s.consent.enforcer.stats().foundAtLogin, 2);
  const records = readRecords(s.recordsPath);
  t.same(
    records.map((r) => r.recording),
    ['kept', 'blocked'],
    'their records say kept and blocked, not none',
  );
});

t.test('a reconnect mid-recording: what started while the link was down is found and judged', async (t) => {
  const before = inbound(3, '1001');
  const during = inbound(4, '1003');
  const bytes = session([
    ...before.start,
    // The link drops here; `during` starts recording while it is down.
    ...during.start,
    // The gateway is back here.
    before.trunk.ev('Newstate'),
    ...Array.from({ length: 20 }, () => during.trunk.ev('RTCPSent')),
    ...before.end,
    ...during.end,
  ]);
  const dropAt = bodyOffset(bytes, 'Event: Newchannel\r\nChannel: PJSIP/trunk-00000040');
  const backAt = bodyOffset(bytes, 'Event: Newstate\r\nChannel: PJSIP/trunk-00000030');
  const s = await consentStack(t, {
    capture: bytes,
    consent: { acme: { '1001': true } },
    client: { reconnect: true, reconnectMinMs: 20 },
    replay: { ...PACED, dropAfterBytes: dropAt, resumeOnReconnect: true, skipOnReconnectBytes: backAt - dropAt },
  });
  await s.run();
  t.equal(s.server.stats().logins, 2, 'logged in twice');
  t.same(stopsOf(s), ['PJSIP/trunk-00000040'], 'the recording that started during the gap is stopped');
  t.equal(s.server.actionsReceived().filter((a) => a.action === 'Status').length, 2, 'Status at each login');
  t.same(
    readRecords(s.recordsPath).map((r) => r.recording),
    ['kept', 'blocked'],
  );
});
