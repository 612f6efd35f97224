// A stop counts when Asterisk confirms it (Response: Success and the
// MixMonitorStop event), over TCP with the test AMI server: a user without
// write=call is refused, a stop can go unconfirmed. Either way the record
// says stop-failed, the audit entry says so, one ERROR per call names the
// cause and /readyz reports consent enforcement failing.
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { field } from '../../src/source/ami-message.js';
import { PROBE_CHANNEL } from '../../src/consent/stop-probe.js';
import { cdr, channel } from './calls.js';
import { consentStack, readRecords, session, type Stack } from './stack.js';

const PACED = { chunking: 'recorded', pauseBetweenChunksMs: 5 } as const;

function call(): Buffer {
  const id = 'pbx-lab3-1796186600.1';
  const trunk = channel(id, id, 'PJSIP/trunk-00000060', { AccountCode: 'acme' });
  const phone = channel('pbx-lab3-1796186600.2', id, 'PJSIP/1003-00000061', { AccountCode: 'acme' });
  return session([
    trunk.newchannel('+442079460103'),
    trunk.varset('TARGET', '1003'),
    ...trunk.recording('/var/spool/asterisk/monitor/+447700900123-1003.wav'),
    phone.newchannel('s'),
    trunk.dial(phone),
    phone.up(),
    phone.bridge('br-6'),
    trunk.bridge('br-6'),
    ...Array.from({ length: 30 }, () => trunk.ev('RTCPSent')),
    phone.hangup(),
    trunk.hangup(),
    cdr(trunk, phone, 'acme'),
  ]);
}

const auditOf = (s: Stack): AuditEntry[] =>
  readFileSync(s.auditPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEntry)
    .filter((e) => e.action.startsWith('recording.'));
const errorLines = (s: Stack) =>
  s
    .logText()
    .toString()
    .split('\n')
    .filter((l) => l.includes('"level":50') && l.includes('"component":"consent"'));
const stops = (s: Stack) =>
  s.proxy.actions.filter((a) => /^stop/i.test(field(a.msg, 'action')) && field(a.msg, 'channel') !== PROBE_CHANNEL);

t.test('an AMI user without write=call: the stop is refused and reported as such', async (t) => {
  const s = await consentStack(t, { capture: call(), replay: { ...PACED, write: ['reporting'] } });
  await s.run();
  t.equal(stops(s).length, 1, 'one stop sent');
  t.same(
    readRecords(s.recordsPath).map((r) => r.recording),
    ['stop-failed'],
    'the record says stop-failed, not blocked',
  );
  t.match(auditOf(s), [{ action: 'recording.stop-failed', tenant: 'acme', detail: { stop: 'not-permitted' } }]);
  const errors = errorLines(s);
  t.equal(
    errors.filter((l) => l.includes('"cause":"not-permitted"') && l.includes('callId')).length,
    1,
    'one ERROR for the call',
  );
  t.ok(
    errors.every((l) => l.includes('write=')),
    'every consent ERROR names the missing write=call',
  );
  t.match(s.health.report().parts['consent'], { ok: false, reason: 'stop-not-permitted' }, '/readyz body: failing');
  t.notMatch(s.logText().toString(), /7700|monitor\//, 'no number, no path in the log');
});

t.test('a stop Asterisk answers but never confirms: stop-failed (unconfirmed)', async (t) => {
  const s = await consentStack(t, {
    capture: call(),
    replay: { ...PACED, stopEvents: false },
    confirmTimeoutMs: 300,
  });
  // Let the replay settle well past the confirmation timeout.
  await s.run(1_500);
  // The leg record came with the hangup, while the stop was in flight; the call record comes after its grace.
  t.same(
    readRecords(s.recordsPath.replace(/\.jsonl$/, '.calls.jsonl')).map((r) => r.recording),
    ['stop-failed'],
    'the call record says stop-failed',
  );
  t.match(auditOf(s), [{ action: 'recording.stop-failed', detail: { stop: 'unconfirmed' } }]);
  t.match(s.health.report().parts['consent'], { ok: false, reason: 'stop-unconfirmed' });
});

t.test('a confirmed stop: blocked, health ok, the latency measured', async (t) => {
  const s = await consentStack(t, { capture: call(), replay: PACED });
  await s.run();
  t.same(
    readRecords(s.recordsPath).map((r) => r.recording),
    ['blocked'],
  );
  t.match(auditOf(s), [{ action: 'recording.blocked', detail: { stop: 'confirmed' } }]);
  t.same(s.health.report().parts['consent'], { ok: true });
  const first = s.delivered.find((d) => d.msg['variable'] === 'MIXMONITOR_FILENAME')!.t;
  const confirmed = s.delivered.find((d) => d.msg['event'] === 'MixMonitorStop')!.t;
  t.ok(confirmed > first);
  const sent = stops(s)[0]!.t;
  t.comment(
    `first event -> stop sent ${(sent - first).toFixed(2)} ms -> confirmed ${(confirmed - first).toFixed(2)} ms`,
  );
});
