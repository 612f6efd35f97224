// Done means: the recording-consent capture (a real Asterisk 20 session)
// replayed message by message with pauses, consent on for some extensions and
// off for others: StopMixMonitor/StopMonitor for exactly the recordings
// without consent, while the call still runs (before its channel's Hangup
// reaches the gateway; the latency itself is a bench target, consentStopP99Ms,
// never a timed assertion here), never for consented
// ones; the records say kept/blocked; the audit chain holds an entry per
// block; and nothing written (records, audit, consent store, logs, WebSocket
// frames) carries a number from the capture.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { verifyAuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { field, type AmiMessage } from '../../src/source/ami-message.js';
import { PROBE_CHANNEL } from '../../src/consent/stop-probe.js';
import { callIdOf, KEYED_ID } from '../../src/privacy/ids.js';
import { needlesForCapture } from '../helpers/ground-truth.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { tempDir } from '../helpers/temp-dir.js';
import { consentStack, readRecords, TOKENS } from './stack.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

// Consent for this run. Not listed: off (acme 1003/1005, globex 1002/1006).
const CONSENT = {
  acme: { '1001': true, '1002': true, '1004': false },
  globex: { '1007': true, '1008': true, '1010': true, '1006': false },
};

// Every recording in the capture (channel that records -> call), with the
// internal parties worked out from the capture and the verdict under CONSENT
// and the rule "kept only if every internal party consents".
const RECORDINGS = [
  // channel, linkedid, kind, parties (tenant), verdict
  ['SIP/trunk-0000009c', 'pbx-lab-1795418520.156', 'mix', 'acme 1001 (inbound TARGET)', 'kept'],
  ['SIP/1001-0000009b', 'pbx-lab-1795418520.155', 'mix', 'acme 1001 + 1002 (__TARGET_EXT)', 'kept'],
  ['SIP/trunk-0000009f', 'pbx-lab-1795418521.159', 'mix', 'acme 1002', 'kept'],
  ['SIP/1003-000000a0', 'pbx-lab-1795418521.160', 'mix', 'acme 1003 + 1001: 1003 off', 'blocked'],
  ['SIP/1005-000000a3', 'pbx-lab-1795418522.163', 'mix', 'acme 1005 + 1004: both off', 'blocked'],
  ['SIP/trunk-000000a4', 'pbx-lab-1795418522.164', 'mix', 'acme 1004 off', 'blocked'],
  ['SIP/1006-000000a7', 'pbx-lab-1795418523.167', 'mix', 'globex 1006 off + 1007', 'blocked'],
  ['SIP/trunk-000000a8', 'pbx-lab-1795418523.168', 'mix', 'globex 1007', 'kept'],
  ['SIP/1008-000000ab', 'pbx-lab-1795418524.171', 'monitor', 'globex 1008 + 1010', 'kept'],
  ['SIP/trunk-000000ad', 'pbx-lab-1795418524.173', 'monitor', 'globex 1010', 'kept'],
  ['SIP/trunk-000000b0', 'pbx-lab-1795418525.176', 'mix', 'acme 1003 (AMI MixMonitor action)', 'blocked'],
  ['SIP/trunk-000000b3', 'pbx-lab-1795418526.179', 'mix', 'acme 1004', 'blocked'],
  ['SIP/1001-000000b4', 'pbx-lab-1795418526.180', 'mix', 'acme 1001 + 1004 off', 'blocked'],
  ['SIP/trunk-000000b7', 'pbx-lab-1795418527.183', 'mix', 'acme 1001', 'kept'],
  ['SIP/1007-000000b8', 'pbx-lab-1795418527.184', 'mix', 'globex 1007 + 1002 (not globex consent)', 'blocked'],
  ['SIP/1004-000000bd', 'pbx-lab-1795418529.189', 'mix', 'acme 1004 off + 1001', 'blocked'],
  ['SIP/1003-000000c1', 'pbx-lab-1795418531.193', 'monitor', 'acme 1003 off + 1010', 'blocked'],
] as const;

/** A stop of a recording (not the login's permission probe, which names a channel that cannot exist). */
const isStop = (a: { msg: AmiMessage }) =>
  /^stop(mix)?monitor$/i.test(field(a.msg, 'action')) && field(a.msg, 'channel') !== PROBE_CHANNEL;

t.test(
  'recording-consent capture: exactly the recordings without consent are stopped while the call runs',
  async (t) => {
    const stack = await consentStack(t, {
      capture: 'recording-consent',
      consent: CONSENT,
      api: true,
      replay: { chunking: 'recorded', pauseBetweenChunksMs: 2 },
    });

    // Two tenant admins watch their live feeds while the capture plays.
    const frames: Record<string, string[]> = { acme: [], globex: [] };
    for (const tenant of ['acme', 'globex'] as const) {
      const ws = new WebSocket(`ws://127.0.0.1:${stack.api!.port}/v1/tenants/${tenant}/live`);
      t.teardown(() => ws.terminate());
      ws.on('message', (d) => frames[tenant]!.push(d.toString()));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => ws.send(JSON.stringify({ type: 'auth', token: TOKENS[tenant] })));
        ws.once('message', () => resolve());
        ws.once('error', reject);
      });
    }

    await stack.run();

    const stops = stack.proxy.actions.filter(isStop);
    const stopped = stops.map((a) => `${field(a.msg, 'action')} ${field(a.msg, 'channel')}`).sort();
    const expected = RECORDINGS.filter((r) => r[4] === 'blocked')
      .map((r) => `${r[2] === 'mix' ? 'StopMixMonitor' : 'StopMonitor'} ${r[0]}`)
      .sort();
    t.same(stopped, expected, 'one stop per recording without consent, none for a consented one');
    t.equal(new Set(stopped).size, stopped.length, 'no recording stopped twice');
    const serverSaw = stack.server
      .actionsReceived()
      .filter((a) => /^stop(mix)?monitor$/i.test(a.action ?? '') && a.channel !== PROBE_CHANNEL).length;
    t.equal(serverSaw, expected.length, 'the AMI server received every stop');

    // Latency: from the client delivering the first start signal of the
    // recording (MIXMONITOR_FILENAME VarSet or MonitorStart) to the stop
    // arriving on the wire at the AMI server side.
    const latencies: number[] = [];
    for (const stop of stops) {
      const channel = field(stop.msg, 'channel');
      const monitor = /^stopmonitor$/i.test(field(stop.msg, 'action'));
      const start = stack.delivered.find(
        ({ msg }) =>
          field(msg, 'channel') === channel &&
          (monitor
            ? field(msg, 'event') === 'MonitorStart'
            : (field(msg, 'event') === 'VarSet' && field(msg, 'variable') === 'MIXMONITOR_FILENAME') ||
              field(msg, 'event') === 'MixMonitorStart'),
      );
      t.ok(start, `start signal seen for ${channel}`);
      if (start === undefined) continue;
      const ms = stop.t - start.t;
      t.ok(ms >= 0, `${channel}: the stop follows its start signal`);
      const hangup = stack.delivered.find(
        ({ msg }) => field(msg, 'channel') === channel && field(msg, 'event') === 'Hangup',
      );
      t.ok(hangup, `${channel} hangs up in the capture`);
      if (hangup !== undefined) t.ok(stop.t < hangup.t, `${channel}: stopped while the call ran`);
      latencies.push(ms);
    }
    latencies.sort((a, b) => a - b);
    const p50 = latencies[Math.floor((latencies.length - 1) / 2)] ?? NaN;
    t.comment(
      `stop latency over ${latencies.length} recordings: p50 ${p50.toFixed(2)} ms, max ${(latencies.at(-1) ?? NaN).toFixed(2)} ms`,
    );

    // Records carry the outcome of their call.
    const records = readRecords(stack.recordsPath);
    t.equal(records.length, 21, 'one record per Master.csv row');
    // Outputs carry keyed call ids: map each back to its Linkedid under either tenant's id key.
    const linkedOf = new Map<string, string>();
    for (const tenant of ['acme', 'globex'])
      for (const r of RECORDINGS)
        linkedOf.set(callIdOf(stack.loaded.privacy.tenants.get(tenant)!.idKey!, tenant, r[1]), r[1]);
    const verdictByLinked = new Map<string, string>(RECORDINGS.map((r) => [r[1], r[4]]));
    const verdict = new Map<string, string>(
      [...linkedOf].map(([keyed, linked]) => [keyed, verdictByLinked.get(linked)!]),
    );
    for (const r of records)
      t.equal(
        r.recording,
        verdict.get(r.callId as string) ?? 'none',
        `record ${r.id as string}: recording ${(verdict.get(r.callId as string) ?? 'none') as string}`,
      );

    // Audit: one entry per blocked recording, chain intact, no number.
    const v = verifyAuditLog(stack.auditPath, { key: TEST_AUDIT_KEY });
    t.ok(v.ok, 'audit chain intact');
    const entries = readFileSync(stack.auditPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEntry);
    const blocked = entries.filter((e) => e.action === 'recording.blocked');
    for (const e of blocked) t.match(e.subject, KEYED_ID, 'the audit entry names the keyed call id');
    t.same(
      blocked.map((e) => linkedOf.get(e.subject!)).sort(),
      RECORDINGS.filter((r) => r[4] === 'blocked')
        .map((r) => r[1])
        .sort(),
      'one audit entry per blocked recording, naming the call',
    );
    t.match(
      blocked.find((e) => linkedOf.get(e.subject!) === 'pbx-lab-1795418522.163'),
      {
        actor: 'gateway',
        tenant: 'acme',
        detail: { kind: 'mixmonitor', reason: 'no-consent', withoutConsent: '1004,1005' },
      },
    );
    t.equal(entries.filter((e) => e.action === 'consent.set').length, 7, 'every consent change audited');

    // Live feeds: scoped to their tenant, outcomes visible, tokens only.
    const parsed = { acme: frames.acme!.map((f) => JSON.parse(f)), globex: frames.globex!.map((f) => JSON.parse(f)) };
    const outcomeOf = (tenant: 'acme' | 'globex') =>
      parsed[tenant]
        .filter((f) => f.type === 'recording')
        .map((f) => `${linkedOf.get(f.callId)} ${f.outcome}`)
        .sort();
    const tenantOfCall = (linkedid: string) =>
      (records.find((r) => linkedOf.get(r.callId as string) === linkedid)?.tenant as string | undefined) ?? 'acme';
    for (const tenant of ['acme', 'globex'] as const) {
      t.same(
        outcomeOf(tenant),
        RECORDINGS.filter((r) => tenantOfCall(r[1]) === tenant)
          .map((r) => `${r[1]} ${r[4]}`)
          .sort(),
        `${tenant} sees the recording outcome of each of its calls`,
      );
      const foreign = parsed[tenant].filter((f) => f.type === 'record' && f.record.tenant !== tenant);
      t.same(foreign, [], `${tenant} sees no other tenant's records`);
      const types = new Set(parsed[tenant].map((f) => f.type));
      for (const type of ['hello', 'call.started', 'call.answered', 'call.ended', 'recording', 'record'])
        t.ok(types.has(type), `${tenant} feed has ${type} frames`);
    }
    const acmeCalls = new Set(parsed.acme.filter((f) => f.callId).map((f) => f.callId));
    const globexCalls = new Set(parsed.globex.filter((f) => f.callId).map((f) => f.callId));
    t.same(
      [...acmeCalls].filter((c) => globexCalls.has(c)),
      [],
      "no call appears in both tenants' feeds",
    );

    const leaks = scanBuffers(needlesForCapture('recording-consent'), [
      { label: 'records', data: readFileSync(stack.recordsPath) },
      { label: 'audit', data: readFileSync(stack.auditPath) },
      { label: 'consent store', data: readFileSync(`${stack.dir}/consent.json`) },
      { label: 'log', data: stack.logText() },
      { label: 'ws acme', data: frames.acme!.join('\n') },
      { label: 'ws globex', data: frames.globex!.join('\n') },
      { label: 'metrics', data: await stack.metrics.render() },
    ]);
    t.same(leaks, [], 'no number from the capture in any output');
    t.notMatch(stack.logText().toString(), /monitor\//, 'no recording path in the logs');
    t.equal(stack.metrics.value('recordings_total', { outcome: 'blocked' }), expected.length);
    t.equal(stack.metrics.value('recordings_total', { outcome: 'kept' }), RECORDINGS.length - expected.length);
  },
);

t.test('with every extension consenting nothing is stopped; with none, every recording is', async (t) => {
  const all = await consentStack(t, {
    capture: 'recording-consent',
    consent: {
      acme: Object.fromEntries(['1001', '1002', '1003', '1004', '1005', '1010'].map((e) => [e, true])),
      globex: Object.fromEntries(['1002', '1006', '1007', '1008', '1010'].map((e) => [e, true])),
    },
  });
  await all.run();
  t.same(all.proxy.actions.filter(isStop), [], 'no stop when everyone consents');
  t.ok(readRecords(all.recordsPath).every((r) => r.recording !== 'blocked'));

  const none = await consentStack(t, { capture: 'recording-consent' });
  await none.run();
  t.equal(none.proxy.actions.filter(isStop).length, RECORDINGS.length, 'default off: every recording stopped');
});

t.test('an unreadable consent store blocks every recording', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const dir = tempDir(t, 'consent-bad');
  writeFileSync(join(dir, 'consent.json'), '{"version":1,"tenants":{"acme":{"1001":{"recording":tru');
  const stack = await consentStack(t, { capture: 'recording-consent', dir });
  t.equal(stack.consent.registry.readable, false);
  await t.rejects(
    stack.consent.registry.set('acme', [{ extension: '1001', recording: true }], 'operator:x'),
    { code: 'GW_CONSENT_STORE' },
    'changes refused',
  );
  await stack.run();
  t.equal(stack.proxy.actions.filter(isStop).length, RECORDINGS.length);
  const reasons = readFileSync(stack.auditPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as AuditEntry).detail?.reason);
  t.ok(reasons.every((r) => r === 'store-unreadable'));
});
