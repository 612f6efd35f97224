// Bounded work per event, over TCP with the test AMI server: 20,000 junk
// TARGET VarSets on a channel with a kept recording keep its targets capped,
// the AMI Ping answered (the link stays up: no reconnect, no phantom
// incomplete record) and the recording kept. Its CPU cost is measured in
// test/bench/consent.bench.ts, not here.
import t from 'tap';
import { field } from '../../src/source/ami-message.js';
import { PROBE_CHANNEL } from '../../src/consent/stop-probe.js';
import { hostileSession, JUNK_VARSETS } from './calls.js';
import { consentStack, readRecords } from './stack.js';

t.test('20,000 junk target VarSets on a recorded channel', async (t) => {
  const s = await consentStack(t, {
    capture: hostileSession(),
    consent: { acme: { '1001': true } },
    client: { pingIntervalMs: 50, pingTimeoutMs: 2_000 },
    // A few hundred bytes at a time, so Pings interleave with the stream.
    replay: { chunking: 'random', seed: 7, pauseBetweenChunksMs: 0 },
  });
  let maxTargets = 0;
  s.client.onMessage((m) => {
    const ch = s.model.channel(field(m, 'uniqueid'));
    if (ch !== undefined) maxTargets = Math.max(maxTargets, ch.consentTargets.size);
  });
  await s.run();
  t.ok(maxTargets <= 32, `targets stay capped (at most ${maxTargets})`);
  const pings = s.server.actionsReceived().filter((a) => a.action === 'Ping').length;
  t.ok(pings >= 1, `Pings sent while the stream ran (${pings})`);
  t.equal(s.client.stats().pingTimeouts, 0, 'every Ping answered');
  t.equal(s.server.stats().connections, 1, 'the link never dropped');
  const records = readRecords(s.recordsPath);
  t.same(
    records.map((r) => [r.recording, r.complete]),
    [['kept', true]],
    'one record, complete, kept: no phantom incomplete record',
  );
  t.same(
    s.proxy.actions.filter((a) => /^stop/i.test(field(a.msg, 'action')) && field(a.msg, 'channel') !== PROBE_CHANNEL),
    [],
    'junk is no party: the consented recording is not stopped',
  );
});

t.test('20,000 extension-shaped junk targets: capped, stopped once, Ping answered', async (t) => {
  const s = await consentStack(t, {
    capture: hostileSession(JUNK_VARSETS, 'digits'),
    consent: { acme: { '1001': true } },
    client: { pingIntervalMs: 50, pingTimeoutMs: 2_000 },
    replay: { chunking: 'random', seed: 7, pauseBetweenChunksMs: 0 },
  });
  await s.run();
  t.equal(s.model.channel('pbx-lab3-1796186700.1')?.consentTargets.size ?? 32, 32, 'capped at 32');
  t.equal(s.client.stats().pingTimeouts, 0, 'every Ping answered');
  t.equal(s.server.stats().connections, 1, 'the link never dropped');
  t.equal(
    s.proxy.actions.filter((a) => /^stop/i.test(field(a.msg, 'action')) && field(a.msg, 'channel') !== PROBE_CHANNEL)
      .length,
    1,
    'parties nobody consented for: stopped once',
  );
  t.same(
    readRecords(s.recordsPath).map((r) => [r.recording, r.complete]),
    [['blocked', true]],
  );
});
