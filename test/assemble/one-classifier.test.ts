// One classifier, three users: whether a party is internal is decided once,
// by the call model's party classifier, and the sanitiser (records), consent
// (the parties a recording is judged on) and the live feed's call log all
// take that answer. The case that used to split them: an external caller
// with a short number (4001 on the trunk, inbound-pstn), under a tenant whose
// extension method is `keep` (the example rules' acme), who must be
// tokenised, never published in clear, and never asked for consent.
import t from 'tap';
import { createCallLog } from '../../src/api/call-log.js';
import { createCallModel } from '../../src/assemble/call-model.js';
import { createCallSanitiser } from '../../src/privacy/sanitise-call.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import { rulesConfig } from '../helpers/configs.js';
import { readCapture } from '../helpers/ground-truth.js';
import { messagesOf } from '../helpers/model-run.js';
import { tempDir } from '../helpers/temp-dir.js';

t.test('a short external number on the trunk: external for records, consent and the live feed alike', async (t) => {
  const loaded = rulesConfig(tempDir(t, 'one-classifier'));
  t.equal(loaded.privacy.tenants.get('acme')?.fields.extension.method, 'keep', 'acme keeps extensions in clear');
  const model = createCallModel({ rules: () => loaded.privacy.callModel, timeZone: 'UTC' });
  const sanitise = createSanitiser(loaded.privacy);
  const sanitiseCall = createCallSanitiser(loaded.privacy);
  const log = createCallLog({ timeZoneOf: () => 'UTC' });
  const legs: unknown[] = [];
  const calls: unknown[] = [];
  model.onLeg((raw) => {
    const r = sanitise(raw);
    if (r.ok) legs.push(r.record);
  });
  model.onCall((raw) => {
    const r = sanitiseCall(raw);
    if (r.ok) {
      calls.push(r.record);
      log.add(r.record);
    }
  });
  const trunkChannels = new Set<string>();
  const consentParties: string[][] = [];
  for (const m of messagesOf(readCapture('inbound-pstn'))) {
    model.handle(m);
    if (m['event'] === 'Newchannel' && m['calleridnum'] === '4001') trunkChannels.add(m['uniqueid']!);
    // Consent's question, asked where it is asked: when the call's parties change.
    if ((m['event'] === 'BridgeEnter' || m['event'] === 'DialBegin') && trunkChannels.has(m['uniqueid'] ?? ''))
      consentParties.push([...(model.recordingParties(m['uniqueid']!)?.extensions ?? [])]);
  }
  model.flush();
  t.ok(trunkChannels.size >= 1, `${trunkChannels.size} call(s) from 4001 on the trunk`);
  for (const u of trunkChannels) {
    const p = model.partyOfChannel(u);
    t.not(p?.where, 'internal', 'the classifier: the trunk caller is not internal');
    t.equal(p?.extension, undefined, 'and stands for no extension');
  }
  t.ok(consentParties.length >= 1, 'consent asked about those calls');
  t.ok(
    consentParties.every((ps) => !ps.includes('4001')),
    'consent: 4001 is never a party whose consent is asked',
  );
  const text = JSON.stringify(legs) + JSON.stringify(calls);
  t.notMatch(text, /"number":"4001"/, 'records: 4001 is never published as a kept extension');
  const recent = log.recent('acme');
  t.ok(recent.length > 0, `${recent.length} acme calls in the live feed's call log`);
  t.ok(
    recent.some((c) => c.extensions.length > 0),
    'the call log does show kept extensions (so their absence below means something)',
  );
  t.ok(
    recent.every((c) => !c.extensions.includes('4001')),
    'live feed call log: 4001 is never one of the call extensions',
  );
});
