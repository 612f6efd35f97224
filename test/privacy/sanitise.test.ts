import t from 'tap';
import type { RawCdr } from '../../src/assemble/raw-cdr.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import { createTenantResolver, type TenantSpec } from '../../src/privacy/tenants.js';

const numbers = { defaultRegion: 'GB', fallbackRegions: ['US'], extensionMaxDigits: 6 };
const acme: TenantSpec = { id: 'acme', key: { keyId: 'acme-1', secret: Buffer.alloc(32, 7) }, numbers, match: { tenantIds: [], accountCodes: ['acme'] } };
const globex: TenantSpec = { id: 'globex', key: { keyId: 'globex-1', secret: Buffer.alloc(32, 7) }, numbers, match: { tenantIds: [], accountCodes: ['globex'] } };
const nokey: TenantSpec = { id: 'nokey', key: null, numbers, match: { tenantIds: [], accountCodes: ['nokey'] } };

function raw(over: Partial<RawCdr> = {}): RawCdr {
  return {
    legId: 'pbx-lab-1795418472.36', callId: 'pbx-lab-1795418472.36', ordinal: 1, tenantHint: '', accountCode: 'acme',
    source: '+447700900123', destination: 's', dialled: '+442079460101', disposition: 'ANSWERED',
    durationSec: 12, billSec: 9, startedAt: '2026-11-18T10:00:00.000Z', answeredAt: '2026-11-18T10:00:03.000Z', endedAt: '2026-11-18T10:00:12.000Z',
    ...over,
  };
}

const sanitise = createSanitiser(createTenantResolver([acme, globex, nokey]));

function ok(r: ReturnType<typeof sanitise>) {
  if (!r.ok) throw new Error(`withheld: ${r.reason}`);
  return r.record;
}

t.test('the same subscriber in any format gets one token within a tenant', async (t) => {
  const tokens = new Set(['+447700900123', '07700900123', '00447700900123', '447700900123', '+44 7700 900123', '07700 900 123'].map((s) => ok(sanitise(raw({ source: s }))).caller.token));
  t.equal(tokens.size, 1);
  t.notOk(tokens.has(null));
});

t.test('two tenants get different tokens for the same number', async (t) => {
  const a = ok(sanitise(raw({ accountCode: 'acme' })));
  const g = ok(sanitise(raw({ accountCode: 'globex' })));
  t.equal(a.tenant, 'acme');
  t.equal(g.tenant, 'globex');
  t.not(a.caller.token, g.caller.token);
  t.equal(a.keyId, 'acme-1');
});

t.test('tenant resolution: accountcode first, then channel tenantid, then default, else withheld', async (t) => {
  t.equal(ok(sanitise(raw({ tenantHint: 'globex', accountCode: 'acme' }))).tenant, 'acme', 'accountcode wins over tenantid');
  t.equal(ok(sanitise(raw({ tenantHint: 'globex', accountCode: '' }))).tenant, 'globex', 'tenantid when no accountcode');
  t.equal(ok(sanitise(raw({ tenantHint: 'globex', accountCode: 'initech' }))).tenant, 'globex', 'tenantid when the accountcode matches no tenant');
  t.same(sanitise(raw({ accountCode: 'initech' })), { ok: false, reason: 'unknown-tenant', tenant: null });
  const withDefault = createSanitiser(createTenantResolver([acme, globex], 'globex'));
  t.equal(ok(withDefault(raw({ accountCode: 'initech' }))).tenant, 'globex');
});

t.test('a tenant without a key is withheld, never published half-cleaned', async (t) => {
  t.same(sanitise(raw({ accountCode: 'nokey' })), { ok: false, reason: 'no-key', tenant: 'nokey' });
});

t.test('inbound calls to extension s are rated on the DID that was dialled', async (t) => {
  const r = ok(sanitise(raw({ destination: 's', dialled: '+442079460101' })));
  t.equal(r.callee.kind, 'e164');
  t.equal(r.callee.country, 'GB');
  t.equal(r.callee.token, ok(sanitise(raw({ destination: '02079460101' }))).callee.token);
  t.equal(ok(sanitise(raw({ destination: 's', dialled: '' }))).callee.kind, 'none');
});

t.test('the output holds exactly the schema fields, none from the input', async (t) => {
  const r = ok(sanitise(raw()));
  t.same(Object.keys(r).sort(), Object.keys(CdrRecord.shape).sort());
  t.same(Object.keys(r.caller).sort(), ['callingCode', 'country', 'kind', 'numberType', 'token']);
  const text = JSON.stringify(r);
  for (const needle of ['7700900123', '2079460101']) t.notOk(text.includes(needle), 'no raw digits');
  t.equal(r.id, 'pbx-lab-1795418472.36#1');
});

t.test('odd values are mapped or withheld, not copied', async (t) => {
  t.equal(ok(sanitise(raw({ disposition: 'WHATEVER 07700900123' }))).disposition, 'UNKNOWN');
  t.same(sanitise(raw({ legId: 'SIP/07700900123-0000002a' })), { ok: false, reason: 'schema', tenant: 'acme' });
  t.same(sanitise(raw({ startedAt: 'yesterday' })), { ok: false, reason: 'schema', tenant: 'acme' });
  const anon = ok(sanitise(raw({ source: 'anonymous' })));
  t.same(anon.caller, { kind: 'withheld', token: null, country: null, callingCode: null, numberType: null });
});
