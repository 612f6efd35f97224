import t from 'tap';
import { KEYED_ID } from '../../src/privacy/ids.js';
import type { RawCdr } from '../../src/assemble/raw-cdr.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
import { createKeyRing, EMPTY_RING } from '../../src/privacy/keys.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import {
  compilePrivacyRules,
  createTenantResolver,
  DEFAULT_FIELDS,
  type TenantPolicySpec,
  type TenantSpec,
} from '../../src/privacy/tenants.js';

const numbers = { defaultRegion: 'GB', fallbackRegions: ['US'], extensionMaxDigits: 6 };
const acme: TenantSpec = {
  id: 'acme',
  key: { keyId: 'acme-1', secret: Buffer.alloc(32, 7) },
  numbers,
  match: { tenantIds: [], accountCodes: ['acme'] },
};
const globex: TenantSpec = {
  id: 'globex',
  key: { keyId: 'globex-1', secret: Buffer.alloc(32, 7) },
  numbers,
  match: { tenantIds: [], accountCodes: ['globex'] },
};
const nokey: TenantSpec = { id: 'nokey', key: null, numbers, match: { tenantIds: [], accountCodes: ['nokey'] } };

function raw(over: Partial<RawCdr> = {}): RawCdr {
  return {
    legId: 'pbx-lab-1795418472.36',
    callId: 'pbx-lab-1795418472.36',
    idTuple: {
      uniqueId: 'pbx-lab-1795418472.36',
      start: '2026-11-18 10:00:00',
      answer: '2026-11-18 10:00:03',
      end: '2026-11-18 10:00:12',
      duration: '12',
      billsec: '9',
      disposition: 'ANSWERED',
      dstChannel: 'SIP/1001-00000025',
      lastApp: 'Dial',
    },
    lastApp: 'Dial',
    tenantHint: '',
    accountCode: 'acme',
    source: '+447700900123',
    destination: 's',
    dialled: '+442079460101',
    disposition: 'ANSWERED',
    durationSec: 12,
    billSec: 9,
    startedAt: '2026-11-18T10:00:00.000Z',
    answeredAt: '2026-11-18T10:00:03.000Z',
    endedAt: '2026-11-18T10:00:12.000Z',
    ...over,
  };
}

const sanitise = createSanitiser(createTenantResolver([acme, globex, nokey]));

function ok(r: ReturnType<typeof sanitise>) {
  if (!r.ok) throw new Error(`withheld: ${r.reason}`);
  return r.record;
}

t.test('the same subscriber in any format gets one token within a tenant', async (t) => {
  const tokens = new Set(
    ['+447700900123', '07700900123', '00447700900123', '447700900123', '+44 7700 900123', '07700 900 123'].map(
      (s) => ok(sanitise(raw({ source: s }))).caller?.token,
    ),
  );
  t.equal(tokens.size, 1);
  t.notOk(tokens.has(null));
  t.notOk(tokens.has(undefined));
});

t.test('two tenants get different tokens for the same number', async (t) => {
  const a = ok(sanitise(raw({ accountCode: 'acme' })));
  const g = ok(sanitise(raw({ accountCode: 'globex' })));
  t.equal(a.tenant, 'acme');
  t.equal(g.tenant, 'globex');
  t.not(a.caller?.token, g.caller?.token);
  t.equal(a.keyId, 'acme-1');
});

t.test('legacy tenants: accountcode first, then channel tenantid, then default, else withheld', async (t) => {
  t.equal(
    ok(sanitise(raw({ tenantHint: 'globex', accountCode: 'acme' }))).tenant,
    'acme',
    'accountcode wins over tenantid',
  );
  t.equal(
    ok(sanitise(raw({ tenantHint: 'globex', accountCode: '' }))).tenant,
    'globex',
    'tenantid when no accountcode',
  );
  t.equal(
    ok(sanitise(raw({ tenantHint: 'globex', accountCode: 'initech' }))).tenant,
    'globex',
    'tenantid when the accountcode matches no tenant',
  );
  t.same(sanitise(raw({ accountCode: 'initech' })), { ok: false, reason: 'unknown-tenant', tenant: null });
  const withDefault = createSanitiser(createTenantResolver([acme, globex], 'globex'));
  t.equal(ok(withDefault(raw({ accountCode: 'initech' }))).tenant, 'globex');
  t.equal(
    createTenantResolver([acme, globex])('globex', 'acme')?.id,
    'acme',
    'the (tenantHint, accountCode) call shape still works',
  );
});

function spec(id: string, match: TenantPolicySpec['match'], over: Partial<TenantPolicySpec> = {}): TenantPolicySpec {
  return {
    id,
    keys: createKeyRing([{ keyId: `${id}-1`, secret: Buffer.alloc(32, id.length), activeFromMs: 0 }]),
    idKey: Buffer.alloc(32, id.length + 100),
    numbers,
    tokenBytes: 16,
    fields: DEFAULT_FIELDS,
    match,
    ...over,
  };
}

t.test('rules resolution: first match wins, in the documented order', async (t) => {
  const rules = compilePrivacyRules(
    [
      spec('a-acct', { accountCodes: ['acc'] }),
      spec('b-tid', { tenantIds: ['tid'] }),
      spec('c-ctx', { contexts: ['cc-*'] }),
      spec('d-did', { dids: ['_+4420794601X[1-5]', '+442079460180'] }),
      spec('e-ext', { extensions: ['1001-1005'] }),
      spec('f-peer', { peers: ['agent-*'] }),
    ],
    'f-peer',
  );
  const s = createSanitiser(rules);
  const all = {
    accountCode: 'acc',
    tenantHint: 'tid',
    destinationContext: 'cc-sales',
    dialled: '02079460101',
    source: '1001',
    channel: 'SIP/agent-7-0000001',
  };
  const none = {
    accountCode: '',
    tenantHint: '',
    destinationContext: 'inbound',
    dialled: '',
    source: '+447700900123',
    destination: 's',
    channel: 'SIP/trunk-0000001',
  };
  const table: Array<[string, Partial<RawCdr>, string]> = [
    ['accountcode beats everything', all, 'a-acct'],
    ['tenantid next', { ...all, accountCode: 'unknown-code' }, 'b-tid'],
    ['context next', { ...all, accountCode: '', tenantHint: '' }, 'c-ctx'],
    ['DID (national format, normalised) next', { ...none, dialled: '02079460104' }, 'd-did'],
    ['DID exact, E.164', { ...none, dialled: '+442079460180' }, 'd-did'],
    ['DID outside the pattern falls through', { ...none, dialled: '02079460106' }, 'f-peer'],
    ['extension (source)', { ...none, source: '1003' }, 'e-ext'],
    ['extension (destination)', { ...none, destination: '1005' }, 'e-ext'],
    ['peer name', { ...none, channel: 'SIP/agent-12-000000a1' }, 'f-peer'],
  ];
  for (const [name, over, tenant] of table) t.equal(ok(s(raw(over))).tenant, tenant, name);
  const noDefault = createSanitiser(compilePrivacyRules([spec('e-ext', { extensions: ['1001-1005'] })]));
  t.same(
    noDefault(raw(none)),
    { ok: false, reason: 'unknown-tenant', tenant: null },
    'unmatched without a default: withheld',
  );
  t.equal(ok(noDefault(raw({ ...none, source: '1004' }))).tenant, 'e-ext');
});

t.test('keys: the newest active key signs; a key not active yet does not; no key withholds', async (t) => {
  const DAY = 86_400_000;
  const ring = createKeyRing([
    { keyId: 'old', secret: Buffer.alloc(32, 1), activeFromMs: 0 },
    { keyId: 'new', secret: Buffer.alloc(32, 2), activeFromMs: 10 * DAY },
    { keyId: 'future', secret: Buffer.alloc(32, 3), activeFromMs: 20 * DAY },
  ]);
  const rules = compilePrivacyRules([spec('acme', { accountCodes: ['acme'] }, { keys: ring })]);
  const at = (ms: number) => ok(createSanitiser(rules, () => ms)(raw()));
  t.equal(at(5 * DAY).keyId, 'old');
  t.equal(at(15 * DAY).keyId, 'new');
  t.equal(at(25 * DAY).keyId, 'future');
  t.not(at(5 * DAY).caller?.token, at(15 * DAY).caller?.token, 'a new key, new tokens');
  const empty = compilePrivacyRules([spec('acme', { accountCodes: ['acme'] }, { keys: EMPTY_RING })]);
  t.same(createSanitiser(empty)(raw()), { ok: false, reason: 'no-key', tenant: 'acme' });
  t.same(
    createSanitiser(rules, () => -1)(raw()),
    { ok: false, reason: 'no-key', tenant: 'acme' },
    'before any key is active',
  );
});

t.test('redact leaves no trace; caller names are keyed or absent', async (t) => {
  const fields = {
    caller: { method: 'redact' as const },
    callee: { method: 'prefix' as const, keepDigits: 2 },
    extension: { method: 'token' as const },
    callerName: { method: 'token' as const },
  };
  const s = createSanitiser(compilePrivacyRules([spec('acme', { accountCodes: ['acme'] }, { fields })]));
  const r = ok(s(raw({ callerName: 'Alice Example' })));
  t.notOk('caller' in r, 'no caller key at all');
  t.same(r.callee, {
    kind: 'e164',
    token: null,
    country: 'GB',
    callingCode: '44',
    numberType: 'FIXED_LINE',
    prefix: '+4420',
  });
  t.match(r.callerName, /^[A-Za-z0-9_-]{22}$/);
  t.equal(ok(s(raw({ callerName: ' alice  EXAMPLE ' }))).callerName, r.callerName, 'names are folded before keying');
  t.equal(ok(s(raw({ callerName: '' }))).callerName, null);
  const text = JSON.stringify(r);
  for (const needle of ['7700900123', '447700900123', '900123', 'Alice', 'alice'])
    t.notOk(text.includes(needle), `no ${needle}`);
  t.notOk('callerName' in ok(sanitise(raw({ callerName: 'Alice Example' }))), 'names are redacted by default');
  CdrRecord.parse(r);
});

t.test('a tenant without a key is withheld, never published half-cleaned', async (t) => {
  t.same(sanitise(raw({ accountCode: 'nokey' })), { ok: false, reason: 'no-key', tenant: 'nokey' });
});

t.test('inbound calls to extension s are rated on the DID that was dialled', async (t) => {
  const r = ok(sanitise(raw({ destination: 's', dialled: '+442079460101' })));
  t.equal(r.callee?.kind, 'e164');
  t.equal(r.callee?.country, 'GB');
  t.equal(r.callee?.token, ok(sanitise(raw({ destination: '02079460101' }))).callee?.token);
  t.equal(ok(sanitise(raw({ destination: 's', dialled: '' }))).callee?.kind, 'none');
});

t.test('the output holds exactly the schema fields, none from the input', async (t) => {
  const r = ok(sanitise(raw()));
  t.same(
    Object.keys(r).sort(),
    Object.keys(CdrRecord.shape)
      .filter((k) => !['callerName', 'direction', 'origin', 'answeredBy', 'queue', 'replaces'].includes(k))
      .sort(),
    'a raw CDR without call-model facts: the optional version-2 fields are absent',
  );
  t.same(Object.keys(r.caller!).sort(), ['callingCode', 'country', 'kind', 'numberType', 'token']);
  const text = JSON.stringify(r);
  for (const needle of ['7700900123', '2079460101']) t.notOk(text.includes(needle), 'no raw digits');
  t.match(r, { id: KEYED_ID, callId: KEYED_ID, legId: KEYED_ID }, 'ids are keyed, never copied');
  t.notOk(text.includes('pbx-lab'), 'no raw Asterisk id');
});

t.test('ids: keyed per tenant from the raw CDR fields, stable, distinct for distinct CDRs', async (t) => {
  const a = ok(sanitise(raw()));
  t.equal(ok(sanitise(raw())).id, a.id, 'the same CDR, the same id (restart, replay)');
  const second = ok(sanitise(raw({ idTuple: { ...raw().idTuple!, lastApp: 'Hangup', dstChannel: '' } })));
  t.not(second.id, a.id, 'a failed Dial then Hangup(): two CDRs of one channel, two ids');
  t.equal(second.callId, a.callId, 'one call');
  t.equal(second.legId, a.legId, 'one leg');
  const other = ok(sanitise(raw({ accountCode: 'globex' })));
  t.not(other.id, a.id, 'another tenant never shares an id for the same CDR');
  t.not(other.callId, a.callId);
  const planted = ok(sanitise(raw({ legId: 'p447700900201-1795418472.1', callId: 'tel-447700900204-1795418472.9' })));
  t.notMatch(JSON.stringify(planted), /7700900201|7700900204/, 'numbers in ids never leave');
});

t.test('replaces: a store row standing for a placeholder carries the placeholder id, keyed', async (t) => {
  const gap = ok(sanitise(raw({ idTuple: undefined, incomplete: 'ami-gap' })));
  const real = ok(sanitise(raw({ recordSource: 'cdr-store', replacesGap: raw().legId })));
  t.equal(real.replaces, gap.id, 'the id the placeholder of that channel had');
  t.not(real.id, gap.id);
  t.equal(real.source, 'cdr-store');
  t.equal(ok(sanitise(raw())).replaces, undefined, 'absent otherwise');
});

t.test('a tenant without its id key is withheld (no-key), not published with raw ids', async (t) => {
  const noId = createSanitiser(compilePrivacyRules([spec('acme', { accountCodes: ['acme'] }, { idKey: null })]));
  t.same(noId(raw()), { ok: false, reason: 'no-key', tenant: 'acme' });
});

t.test('odd values are mapped or withheld, not copied', async (t) => {
  t.equal(ok(sanitise(raw({ disposition: 'WHATEVER 07700900123' }))).disposition, 'UNKNOWN');
  t.equal(ok(sanitise(raw({ lastApp: 'Dial(SIP/07700900123)' }))).lastApp, null, 'lastApp is a name or null');
  t.same(sanitise(raw({ startedAt: 'yesterday' })), { ok: false, reason: 'schema', tenant: 'acme' });
  const anon = ok(sanitise(raw({ source: 'anonymous' })));
  t.same(anon.caller, { kind: 'withheld', token: null, country: null, callingCode: null, numberType: null });
});
