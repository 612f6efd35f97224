// The consent decision is a pure function: table tests over the party rule.
import t from 'tap';
import { decideRecording, extensionOf, recordingParties, type ConsentView } from '../../src/consent/decide.js';

const view = (on: Record<string, string[]>, readable = true): ConsentView => ({
  readable,
  isOn: (tenant, ext) => (on[tenant] ?? []).includes(ext),
});
const ch = (channel: string, dialled: string, targets: string[] = []) => ({
  channel,
  dialled,
  consentTargets: new Set(targets),
});

t.test('extensionOf: short digit strings and extension channels only', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['1001', '1001'],
    ['SIP/1001-0000009b', '1001'],
    ['PJSIP/204-00000001', '204'],
    ['Local/1002@internal-00000001;1', '1002'],
    ['SIP/trunk-0000009c', undefined],
    ['+442079460101', undefined],
    ['07700900123', undefined],
    ['SIP/07700900123-0000002a', undefined],
    ['s', undefined],
    ['', undefined],
    ['*97', undefined],
  ];
  for (const [v, want] of cases) t.equal(extensionOf(v, 6), want, JSON.stringify(v));
  t.equal(extensionOf('1001', 3), undefined, 'longer than the tenant allows');
});

t.test('parties as the capture shows them', async (t) => {
  // inbound: records on the trunk, TARGET names the extension, the DID is long
  t.same(recordingParties(ch('SIP/trunk-0000009c', '+442079460101', ['1001']), 6), ['1001']);
  // internal: records on the caller's channel, __TARGET_EXT names the callee
  t.same(recordingParties(ch('SIP/1001-0000009b', '1002', ['1002', 'SIP/1002-0000009d']), 6), ['1001', '1002']);
  // outbound: the caller's own channel, dialling an external number over the trunk
  t.same(recordingParties(ch('SIP/1004-00000079', '02079460204', ['SIP/trunk-0000007a']), 6), ['1004']);
  // a queue that rang two members
  t.same(recordingParties(ch('SIP/trunk-00000001', '+442079460180', ['SIP/1006-00000002', 'SIP/1003-00000003']), 6), [
    '1003',
    '1006',
  ]);
});

t.test('kept only if every internal party consents; anything unknown is blocked', async (t) => {
  const v = view({ acme: ['1001', '1002'] });
  t.same(decideRecording('acme', ['1001', '1002'], v), { verdict: 'kept', parties: ['1001', '1002'] });
  t.match(decideRecording('acme', ['1001', '1004'], v), {
    verdict: 'blocked',
    reason: 'no-consent',
    withoutConsent: ['1004'],
  });
  t.match(
    decideRecording('acme', ['1003'], v),
    { verdict: 'blocked', reason: 'no-consent', withoutConsent: ['1003'] },
    'unknown extension: off',
  );
  t.match(
    decideRecording('globex', ['1001'], v),
    { verdict: 'blocked', reason: 'no-consent' },
    'consent is per tenant',
  );
  t.match(decideRecording(undefined, ['1001'], v), { verdict: 'blocked', reason: 'unknown-tenant' });
  t.match(decideRecording('acme', [], v), { verdict: 'blocked', reason: 'no-target' });
  t.match(decideRecording('acme', ['1001'], view({ acme: ['1001'] }, false)), {
    verdict: 'blocked',
    reason: 'store-unreadable',
  });
});
