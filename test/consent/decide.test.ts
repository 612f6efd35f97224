// The consent decision is a pure function of the parties (the call model's
// answer) and the registry: table tests over the rule; and the parties as the
// call model gives them, from where each party is (never from digit counts).
import t from 'tap';
import { createCallModel, type RecordingParties } from '../../src/assemble/call-model.js';
import { decideRecording, type ConsentView } from '../../src/consent/decide.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import { labRules } from '../helpers/lab-rules.js';

const view = (on: Record<string, string[]>, readable = true): ConsentView => ({
  readable,
  isOn: (tenant, ext) => (on[tenant] ?? []).includes(ext),
});
const parties = (extensions: string[], more: Partial<RecordingParties> = {}): RecordingParties => ({
  extensions,
  unnamed: 0,
  complete: true,
  ...more,
});

t.test('kept only if every internal party consents; anything unknown is blocked', async (t) => {
  const v = view({ acme: ['1001', '1002'] });
  t.same(decideRecording('acme', parties(['1001', '1002']), v), { verdict: 'kept', parties: ['1001', '1002'] });
  t.match(decideRecording('acme', parties(['1001', '1004']), v), {
    verdict: 'blocked',
    reason: 'no-consent',
    withoutConsent: ['1004'],
  });
  t.match(
    decideRecording('acme', parties(['1003']), v),
    { verdict: 'blocked', withoutConsent: ['1003'] },
    'unknown: off',
  );
  t.match(decideRecording('globex', parties(['1001']), v), { reason: 'no-consent' }, 'consent is per tenant');
  t.match(decideRecording(undefined, parties(['1001']), v), { verdict: 'blocked', reason: 'unknown-tenant' });
  t.match(decideRecording('acme', parties([]), v), { verdict: 'blocked', reason: 'no-target' });
  t.match(decideRecording('acme', parties(['1001']), view({ acme: ['1001'] }, false)), {
    reason: 'store-unreadable',
  });
  t.match(decideRecording('acme', parties(['1001'], { unnamed: 1 }), v), { reason: 'unnamed-party' });
  t.match(decideRecording('acme', parties(['1001'], { complete: false }), v), { reason: 'too-many-parties' });
  // Incremental: extensions already judged are not asked again (a consent change passes none).
  const asked: string[] = [];
  const counting: ConsentView = { readable: true, isOn: (_t, e) => (asked.push(e), e !== '1009') };
  t.same(decideRecording('acme', parties(['1001', '1002']), counting, new Set(['1001'])).verdict, 'kept');
  t.same(asked, ['1002'], 'only the new party was looked up');
});

/** A call model fed with channel events (raw values, as Asterisk sends them). */
function model() {
  const rules = labRules();
  const m = createCallModel({ rules: () => rules.callModel });
  const feed = (msg: Record<string, string>) => m.handle(msg as AmiMessage);
  return { m, feed };
}
const A = 'pbx-lab-1795418520.155';
const B = 'pbx-lab-1795418520.156';
const C = 'pbx-lab-1795418520.157';

t.test('parties as the call model sees them: inbound, internal, outbound, queue', async (t) => {
  // inbound: records on the trunk; TARGET names the extension, the DID is long
  let { m, feed } = model();
  feed({ event: 'Newchannel', uniqueid: A, linkedid: A, channel: 'SIP/trunk-0000009c', exten: '+442079460101' });
  feed({ event: 'VarSet', uniqueid: A, linkedid: A, channel: 'SIP/trunk-0000009c', variable: 'TARGET', value: '1001' });
  t.same(m.recordingParties(A), parties(['1001']));
  // internal: the caller's own extension and __TARGET_EXT
  ({ m, feed } = model());
  feed({ event: 'Newchannel', uniqueid: A, linkedid: A, channel: 'SIP/1001-0000009b', exten: '1002' });
  t.same(m.recordingParties(A), parties(['1001', '1002']), 'what a phone dialled counts before its Dial');
  // outbound: the caller's extension; the trunk it dials is external
  ({ m, feed } = model());
  feed({ event: 'Newchannel', uniqueid: A, linkedid: A, channel: 'SIP/1004-00000079', exten: '02079460204' });
  feed({ event: 'DialBegin', uniqueid: A, linkedid: A, channel: 'SIP/1004-00000079', destchannel: 'SIP/trunk-7a' });
  t.same(m.recordingParties(A), parties(['1004']));
  // a queue that rang two members: both
  ({ m, feed } = model());
  feed({ event: 'Newchannel', uniqueid: A, linkedid: A, channel: 'SIP/trunk-00000001', exten: '+442079460180' });
  for (const [u, name] of [
    [B, 'SIP/1006-00000002'],
    [C, 'SIP/1003-00000003'],
  ] as const) {
    feed({ event: 'Newchannel', uniqueid: u, linkedid: A, channel: name, exten: 's' });
    feed({
      event: 'DialBegin',
      uniqueid: A,
      linkedid: A,
      channel: 'SIP/trunk-00000001',
      destchannel: name,
      destuniqueid: u,
    });
  }
  t.same(m.recordingParties(A), parties(['1003', '1006']));
});

t.test(
  'a peer named acme-1004 is extension 1004; a phone with no extension is a party nobody can consent for',
  async (t) => {
    const { m, feed } = model();
    feed({ event: 'Newchannel', uniqueid: A, linkedid: A, channel: 'SIP/1001-0000009b', exten: '1004' });
    feed({ event: 'Newchannel', uniqueid: B, linkedid: A, channel: 'PJSIP/acme-1004-0000000a', exten: 's' });
    feed({
      event: 'DialBegin',
      uniqueid: A,
      linkedid: A,
      channel: 'SIP/1001-0000009b',
      destchannel: 'PJSIP/acme-1004-0000000a',
      destuniqueid: B,
    });
    t.same(m.recordingParties(A), parties(['1001', '1004']));
    feed({ event: 'Newchannel', uniqueid: C, linkedid: A, channel: 'PJSIP/reception-0000000b', exten: 's' });
    t.same(m.recordingParties(A), parties(['1001', '1004'], { unnamed: 1 }));
  },
);

t.test('targets are capped; beyond the cap the parties are incomplete', async (t) => {
  const { m, feed } = model();
  feed({ event: 'Newchannel', uniqueid: A, linkedid: A, channel: 'SIP/trunk-0000009c', exten: '+442079460101' });
  feed({ event: 'VarSet', uniqueid: A, linkedid: A, channel: 'SIP/trunk-0000009c', variable: 'TARGET', value: '1001' });
  // Junk and external numbers are no parties: not kept at all.
  for (let i = 0; i < 1000; i++)
    feed({
      event: 'VarSet',
      uniqueid: A,
      linkedid: A,
      channel: 'SIP/trunk-0000009c',
      variable: 'TARGET',
      value: `junk-${i}`,
    });
  feed({
    event: 'VarSet',
    uniqueid: A,
    linkedid: A,
    channel: 'SIP/trunk-0000009c',
    variable: 'TARGET',
    value: '07700900123',
  });
  t.equal(m.channel(A)!.consentTargets.size, 1);
  t.same(m.recordingParties(A), parties(['1001']));
  // Extension-shaped values beyond the cap: not every party is known any more.
  for (let i = 0; i < 1000; i++)
    feed({
      event: 'VarSet',
      uniqueid: A,
      linkedid: A,
      channel: 'SIP/trunk-0000009c',
      variable: 'TARGET',
      value: String(5000 + i),
    });
  t.equal(m.channel(A)!.consentTargets.size, 32, 'capped');
  t.same(m.recordingParties(A)?.complete, false);
});
