// Parties and tenant come from the call model, over TCP with the test AMI
// server: a peer named `acme-1004` is extension 1004 of acme, and a call the
// rules give to northwind (untagged, context cc-*) is judged in northwind's
// registry and audited under northwind, whatever acme says.
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { field } from '../../src/source/ami-message.js';
import { rulesConfig } from '../helpers/configs.js';
import { tempDir } from '../helpers/temp-dir.js';
import { cdr, channel } from './calls.js';
import { consentStack, readRecords, session, type Stack } from './stack.js';
import { PROBE_CHANNEL } from '../../src/consent/stop-probe.js';

// One write per message, 5 ms apart: a stop is answered before the call hangs up, as on a real call.
const PACED = { chunking: 'recorded', pauseBetweenChunksMs: 5 } as const;
const stopsOf = (s: Stack) =>
  s.proxy.actions
    .filter((a) => /^stop/i.test(field(a.msg, 'action')) && field(a.msg, 'channel') !== PROBE_CHANNEL)
    .map((a) => field(a.msg, 'channel'));
const auditOf = (s: Stack): AuditEntry[] =>
  readFileSync(s.auditPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEntry)
    .filter((e) => e.action.startsWith('recording.'));

/** 1001 calls the phone on peer acme-1004 (dialled by name), recording on the caller's channel. */
function acmePeerCall(): Buffer {
  const a = channel('pbx-lab3-1796186100.1', 'pbx-lab3-1796186100.1', 'SIP/1001-00000001', { AccountCode: 'acme' });
  const b = channel('pbx-lab3-1796186100.2', 'pbx-lab3-1796186100.1', 'PJSIP/acme-1004-00000002', {
    AccountCode: 'acme',
  });
  return session([
    a.newchannel('reception'),
    ...a.recording('/var/spool/asterisk/monitor/1001-reception.wav'),
    b.newchannel('s'),
    a.dial(b),
    b.up(),
    b.bridge('br-1'),
    a.bridge('br-1'),
    b.hangup(),
    a.hangup(),
    cdr(a, b, 'acme'),
  ]);
}

t.test('a peer named acme-1004 is extension 1004 of acme', async (t) => {
  const blocked = await consentStack(t, {
    capture: acmePeerCall(),
    replay: PACED,
    consent: { acme: { '1001': true } },
  });
  await blocked.run();
  t.same(stopsOf(blocked), ['SIP/1001-00000001'], '1004 has no consent: stopped');
  t.same(
    readRecords(blocked.recordsPath).map((r) => r.recording),
    ['blocked'],
  );
  t.match(auditOf(blocked), [{ action: 'recording.blocked', tenant: 'acme', detail: { withoutConsent: '1004' } }]);

  const kept = await consentStack(t, {
    capture: acmePeerCall(),
    replay: PACED,
    consent: { acme: { '1001': true, '1004': true } },
  });
  await kept.run();
  t.same(stopsOf(kept), [], 'both consent: kept');
  t.same(
    readRecords(kept.recordsPath).map((r) => r.recording),
    ['kept'],
  );
});

/** An untagged inbound call in northwind's context cc-inbound, for agent 2001 (peer agent-2001). */
function northwindCall(): Buffer {
  const trunk = channel('pbx-lab3-1796186200.1', 'pbx-lab3-1796186200.1', 'PJSIP/trunk-00000010', {
    Context: 'cc-inbound',
  });
  const agent = channel('pbx-lab3-1796186200.2', 'pbx-lab3-1796186200.1', 'PJSIP/agent-2001-00000011', {
    Context: 'cc-agents',
  });
  return session([
    trunk.newchannel('+442079460701'),
    trunk.varset('TARGET', '2001'),
    ...trunk.recording('/var/spool/asterisk/monitor/+447700900123-2001.wav'),
    agent.newchannel('s'),
    trunk.dial(agent),
    agent.up(),
    agent.bridge('br-2'),
    trunk.bridge('br-2'),
    agent.hangup(),
    trunk.hangup(),
    cdr(trunk, agent),
  ]);
}

t.test("a northwind call is judged in northwind's registry, not acme's", async (t) => {
  const dir = tempDir(t, 'consent-northwind');
  const config = rulesConfig(dir);
  // acme switching 2001 on must not keep northwind's recording.
  const wrong = await consentStack(t, {
    capture: northwindCall(),
    replay: PACED,
    config,
    consent: { acme: { '2001': true }, northwind: { '2001': false } },
  });
  await wrong.run();
  t.same(stopsOf(wrong), ['PJSIP/trunk-00000010'], 'northwind 2001 has no consent: stopped');
  t.match(
    auditOf(wrong),
    [{ action: 'recording.blocked', tenant: 'northwind', detail: { withoutConsent: '2001', stop: 'confirmed' } }],
    'audited under northwind',
  );
  t.same(
    readRecords(wrong.recordsPath).map((r) => [r.tenant, r.recording]),
    [['northwind', 'blocked']],
  );

  const right = await consentStack(t, {
    capture: northwindCall(),
    replay: PACED,
    config: rulesConfig(tempDir(t, 'consent-northwind')),
    consent: { northwind: { '2001': true } },
  });
  await right.run();
  t.same(stopsOf(right), [], 'northwind 2001 consents: kept');
  t.same(
    readRecords(right.recordsPath).map((r) => [r.tenant, r.recording]),
    [['northwind', 'kept']],
  );
  t.same(auditOf(right), [], 'nothing audited for a kept recording');
});
