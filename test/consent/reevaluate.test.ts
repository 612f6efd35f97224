// A kept recording is judged again whenever the parties of its call change,
// by any path, over TCP with the test AMI server: an attended transfer
// through Local channels and a blind transfer (the real Asterisk 22 capture
// pjsip-transfers), a queue answered by a member without consent, and a
// Redirect of the recorded channel to another extension.
import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { field } from '../../src/source/ami-message.js';
import { PROBE_CHANNEL } from '../../src/consent/stop-probe.js';
import { KEY_ACME, KEY_GLOBEX } from '../helpers/configs.js';
import { cdr, channel } from './calls.js';
import { consentStack, readRecords, session, type Stack } from './stack.js';

/** The Asterisk 22 lab's tenants: hooli (3101-3105), vandelay (3106-3110), by accountcode. */
function pjsipConfig() {
  const tenant = (id: string, keyEnv: string) => ({
    id,
    keyId: `${id}-1`,
    keyEnv,
    defaultRegion: 'GB',
    fallbackRegions: ['US'],
    match: { accountCodes: [id] },
  });
  return parseConfig(
    { tenants: [tenant('hooli', 'K_H'), tenant('vandelay', 'K_V')] },
    { K_H: KEY_ACME, K_V: KEY_GLOBEX },
    '(test)',
  );
}

const stopsOf = (s: Stack) =>
  s.proxy.actions.filter((a) => /^stop/i.test(field(a.msg, 'action')) && field(a.msg, 'channel') !== PROBE_CHANNEL);
/** When the client delivered the first event matching `pred`. */
const deliveredAt = (s: Stack, pred: (m: Record<string, unknown>) => boolean) =>
  s.delivered.find((d) => pred(d.msg as Record<string, unknown>))?.t;

t.test('pjsip-transfers: blind and attended (Local channel) transfers to 3103 without consent', async (t) => {
  const s = await consentStack(t, {
    capture: 'pjsip-transfers',
    config: pjsipConfig(),
    consent: { hooli: { '3101': true, '3102': true, '3105': true, '3103': false } },
    replay: { chunking: 'recorded', pauseBetweenChunksMs: 1 },
  });
  await s.run();
  const stops = stopsOf(s);
  const blind = stops.filter((a) => field(a.msg, 'channel') === 'PJSIP/3101-000000ca');
  const attended = stops.filter((a) => field(a.msg, 'channel') === 'PJSIP/3105-000000cd');
  t.equal(blind.length, 1, 'the blind-transferred call is stopped once');
  t.equal(attended.length, 1, 'the call whose caller consulted 3103 through Local/3103@phones is stopped once');
  // Kept while 3101/3102 (3105/3102) talked; stopped only once 3103 came in.
  const blindAt = deliveredAt(s, (m) => m['event'] === 'BlindTransfer')!;
  t.ok(blind[0]!.t > blindAt, 'blind: the stop follows the transfer');
  const localAt = deliveredAt(
    s,
    (m) => m['event'] === 'Newchannel' && m['channel'] === 'Local/3103@phones-00000000;1',
  )!;
  t.ok(attended[0]!.t > localAt, 'attended: the stop follows the Local channels of the consultation');
  const dialLocalAt = deliveredAt(s, (m) => m['event'] === 'DialBegin' && m['destchannel'] === 'PJSIP/3103-000000d6')!;
  t.ok(attended[0]!.t <= dialLocalAt + 100, 'attended: stopped by the time the consultation dials 3103');
  t.comment(
    `stop after the transfer: blind ${(blind[0]!.t - blindAt).toFixed(2)} ms, attended ${(attended[0]!.t - localAt).toFixed(2)} ms after the Local channel`,
  );
  t.equal(s.consent.enforcer.stats().stopsConfirmed, stops.length, 'every stop confirmed by the server');
});

t.test('a queue answered by a member without consent stops the kept recording', async (t) => {
  const id = 'pbx-lab3-1796186500.1';
  const trunk = channel(id, id, 'PJSIP/trunk-00000050', { AccountCode: 'acme' });
  const m1 = channel('pbx-lab3-1796186500.2', id, 'PJSIP/1002-00000051', { AccountCode: 'acme' });
  const m2 = channel('pbx-lab3-1796186500.3', id, 'PJSIP/1003-00000052', { AccountCode: 'acme' });
  const bytes = session([
    trunk.newchannel('+442079460180'),
    trunk.varset('TARGET', '8000'),
    ...trunk.recording('/var/spool/asterisk/monitor/+447700900123-8000.wav'),
    trunk.ev('QueueCallerJoin', { Queue: 'support', Position: '1', Count: '1' }),
    m1.newchannel('s'),
    trunk.dial(m1),
    ...Array.from({ length: 10 }, () => trunk.ev('RTCPSent')),
    m1.hangup(),
    m2.newchannel('s'),
    trunk.dial(m2),
    m2.up(),
    trunk.ev('AgentConnect', { Queue: 'support', DestChannel: m2.name, DestUniqueid: m2.uniqueid, HoldTime: '3' }),
    m2.bridge('br-q'),
    trunk.bridge('br-q'),
    ...Array.from({ length: 10 }, () => trunk.ev('RTCPSent')),
    m2.hangup(),
    trunk.hangup(),
    cdr(trunk, m2, 'acme'),
  ]);
  const s = await consentStack(t, {
    capture: bytes,
    consent: { acme: { '8000': true, '1002': true } },
    replay: { chunking: 'recorded', pauseBetweenChunksMs: 2 },
  });
  await s.run();
  const stops = stopsOf(s);
  t.equal(stops.length, 1, 'stopped once');
  const rungAt = deliveredAt(s, (m) => m['event'] === 'Newchannel' && m['channel'] === m2.name)!;
  t.ok(stops[0]!.t > rungAt, 'kept while 1002 rang; stopped once 1003 came to the call');
  t.same(
    readRecords(s.recordsPath).map((r) => r.recording),
    ['blocked'],
  );
});

t.test('a Redirect of a recorded channel to an extension without consent stops the kept recording', async (t) => {
  const id = 'pbx-lab3-1796186800.1';
  const trunk = channel(id, id, 'PJSIP/trunk-00000080', { AccountCode: 'acme' });
  const first = channel('pbx-lab3-1796186800.2', id, 'PJSIP/1001-00000081', { AccountCode: 'acme' });
  const second = channel('pbx-lab3-1796186800.3', id, 'PJSIP/1003-00000082', { AccountCode: 'acme' });
  const bytes = session([
    trunk.newchannel('+442079460101'),
    trunk.varset('TARGET', '1001'),
    ...trunk.recording('/var/spool/asterisk/monitor/+447700900123-1001.wav'),
    first.newchannel('s'),
    trunk.dial(first),
    first.up(),
    first.bridge('br-r'),
    trunk.bridge('br-r'),
    ...Array.from({ length: 10 }, () => trunk.ev('RTCPSent')),
    // AMI Redirect: the trunk leaves the bridge and runs the dialplan again, for 1003.
    trunk.leave('br-r'),
    first.hangup(),
    trunk.ev('Newexten', { Exten: '1003', Application: 'Dial', AppData: 'PJSIP/1003' }),
    trunk.varset('__TARGET_EXT', '1003'),
    second.newchannel('s'),
    trunk.dial(second),
    second.up(),
    ...Array.from({ length: 10 }, () => trunk.ev('RTCPSent')),
    second.hangup(),
    trunk.hangup(),
    cdr(trunk, second, 'acme'),
  ]);
  const s = await consentStack(t, {
    capture: bytes,
    consent: { acme: { '1001': true } },
    replay: { chunking: 'recorded', pauseBetweenChunksMs: 2 },
  });
  await s.run();
  const stops = stopsOf(s);
  t.equal(stops.length, 1, 'stopped once');
  const redirectedAt = deliveredAt(s, (m) => m['event'] === 'BridgeLeave' && m['channel'] === trunk.name)!;
  t.ok(stops[0]!.t > redirectedAt, 'kept while 1001 talked; stopped once the redirect headed for 1003');
  t.same(
    readRecords(s.recordsPath.replace(/\.jsonl$/, '.calls.jsonl')).map((r) => r.recording),
    ['blocked'],
  );
});
