import t from 'tap';
import { createKeyRing } from '../../src/privacy/keys.js';
import { applyMethod, fpeDecrypt, fpeEncrypt, ratingPrefix } from '../../src/privacy/methods.js';
import {
  compilePrivacyRules,
  DEFAULT_FIELDS,
  type NumberFieldRule,
  type TenantPolicy,
  type TenantPolicySpec,
} from '../../src/privacy/tenants.js';
import { MAX_KEPT_DIGITS } from '../../src/rules/schema.js';

const key = { keyId: 'k1', secret: Buffer.alloc(32, 9) };
const numbers = { defaultRegion: 'GB', fallbackRegions: ['US'], extensionMaxDigits: 6 };

function policy(id: string, over: Partial<TenantPolicySpec> = {}): TenantPolicy {
  const spec: TenantPolicySpec = {
    id,
    keys: createKeyRing([{ ...key, activeFromMs: 0 }]),
    idKey: Buffer.alloc(32, 8),
    numbers,
    tokenBytes: 16,
    fields: DEFAULT_FIELDS,
    match: {},
    ...over,
  };
  return compilePrivacyRules([spec]).tenants.get(id)!;
}

const acme = policy('acme');
const globex = policy('globex');
const FORMATS = ['+447700900123', '07700900123', '00447700900123', '447700900123', '+44 7700 900123', '07700 900 123'];
const US_FORMATS = ['+12025550146', '+1 (202) 555-0146', '0012025550146', '12025550146'];

function run(p: TenantPolicy, rule: NumberFieldRule, raw: string) {
  return applyMethod(p, key, rule, p.classify(raw));
}

t.test('token: one subscriber in every format, one token; two tenants, unlinkable tokens', async (t) => {
  for (const set of [FORMATS, US_FORMATS]) {
    const a = new Set(set.map((raw) => run(acme, { method: 'token' }, raw)?.token));
    const g = new Set(set.map((raw) => run(globex, { method: 'token' }, raw)?.token));
    t.equal(a.size, 1, `${set[0]}: one token in acme`);
    t.equal(g.size, 1, `${set[0]}: one token in globex`);
    t.not([...a][0], [...g][0], 'same key, other tenant, other token');
    t.match([...a][0], /^[A-Za-z0-9_-]{22}$/, 'URL-safe, 128 bits');
  }
});

t.test('token: length follows the rules, never below 80 bits', async (t) => {
  for (const [bytes, chars] of [
    [10, 14],
    [12, 16],
    [16, 22],
    [32, 43],
    [4, 14],
  ] as const) {
    const tok = run(policy('acme', { tokenBytes: bytes }), { method: 'token' }, '07700900123')?.token;
    t.equal(tok?.length, chars, `${bytes} bytes -> ${chars} characters`);
  }
});

t.test('fpe: same length, kept prefix, one value per subscriber, round-trips, unlinkable across tenants', async (t) => {
  const table: Array<[string[], number, string, number]> = [
    // formats, keepDigits, expected kept prefix, encrypted digits
    [FORMATS, 0, '+44', 10],
    [FORMATS, 3, '+44770', 7],
    [FORMATS, 4, '+447700', 6],
    [FORMATS, 5, '+447700', 6], // capped: 6 digits in all
    [US_FORMATS, 3, '+1202', 7],
    [US_FORMATS, 5, '+12025', 6], // capped by FF1's 6-digit minimum
  ];
  for (const [formats, keep, prefix, encLen] of table) {
    const values = new Set(formats.map((raw) => run(acme, { method: 'fpe', keepDigits: keep }, raw)?.fpe));
    t.equal(values.size, 1, `${formats[0]} keep ${keep}: one value`);
    const v = [...values][0]!;
    const [kept, enc] = v.split('_');
    t.equal(kept, prefix, `keep ${keep}: kept part`);
    t.equal(enc!.length, encLen, `keep ${keep}: encrypted digits`);
    t.ok(kept!.replace('+', '').length <= MAX_KEPT_DIGITS, 'never more than 6 kept digits');
    t.equal(
      kept!.length - 1 + enc!.length,
      acme.classify(formats[0]!).canonical.length - 1,
      'same number of digits as the number',
    );
    t.ok(enc!.length >= 6, 'FF1 domain: at least 6 encrypted digits');
    t.equal(fpeDecrypt('acme', key, v), acme.classify(formats[0]!).canonical, 'round trip');
    t.not(run(globex, { method: 'fpe', keepDigits: keep }, formats[0]!)?.fpe, v, 'other tenant, other value');
    t.equal(run(acme, { method: 'fpe', keepDigits: keep }, formats[0]!)?.token, null, 'no token beside fpe');
  }
  t.equal(
    fpeDecrypt('globex', key, fpeEncrypt('acme', key, acme.classify('07700900123'), 3)!) === '+447700900123',
    false,
    'the tenant is in the tweak',
  );
  t.equal(fpeDecrypt('acme', key, 'not-fpe'), undefined);
});

t.test('fpe: values that FF1 cannot take get a keyed token, never digits', async (t) => {
  const invalid = run(acme, { method: 'fpe', keepDigits: 3 }, '+1202555006');
  t.equal(invalid?.kind, 'invalid');
  t.equal(invalid?.fpe, undefined);
  t.match(invalid?.token, /^[A-Za-z0-9_-]{22}$/);
});

t.test('prefix: never longer than configured, never more than 6 digits, nothing else', async (t) => {
  for (const raw of [...FORMATS, ...US_FORMATS, '02079460101', '+33142685300', '+8613800138000']) {
    for (let keep = 0; keep <= 5; keep++) {
      const p = run(acme, { method: 'prefix', keepDigits: keep }, raw)!;
      const n = acme.classify(raw);
      t.equal(p.token, null);
      t.equal(p.fpe, undefined);
      t.ok(p.prefix!.length - 1 <= n.callingCode!.length + keep, `${p.prefix} <= cc + ${keep}`);
      t.ok(p.prefix!.length - 1 <= MAX_KEPT_DIGITS, `${p.prefix} <= ${MAX_KEPT_DIGITS} digits`);
      t.ok(n.canonical.startsWith(p.prefix!), 'a real prefix of the number');
    }
  }
  t.equal(ratingPrefix(acme.classify('07700900123'), 4), '+447700');
  t.equal(
    run(acme, { method: 'token', ratingPrefix: 4 }, '02079460101')?.prefix,
    '+442079',
    'token plus rating prefix',
  );
});

t.test('redact: the field is gone; keep: only extensions, only when the tenant says so', async (t) => {
  t.equal(run(acme, { method: 'redact' }, '07700900123'), undefined);
  t.equal(
    run(acme, { method: 'redact' }, '1001'),
    undefined,
    'a redacted party stays redacted when it is an extension',
  );
  const keep = policy('acme', { fields: { ...DEFAULT_FIELDS, extension: { method: 'keep' } } });
  t.same(run(keep, { method: 'token' }, '1001'), {
    kind: 'extension',
    token: null,
    country: null,
    callingCode: null,
    numberType: null,
    extension: '1001',
  });
  t.equal(
    run(keep, { method: 'token' }, '07700900123')?.extension,
    undefined,
    'keep never applies to subscriber numbers',
  );
  t.match(run(acme, { method: 'token' }, '1001')?.token, /^[A-Za-z0-9_-]{22}$/, 'default: extensions are tokenised');
  const redactExt = policy('acme', { fields: { ...DEFAULT_FIELDS, extension: { method: 'redact' } } });
  t.equal(run(redactExt, { method: 'token' }, '1001'), undefined);
});

t.test('withheld and control values carry no identifier under any method', async (t) => {
  for (const rule of [
    { method: 'token' },
    { method: 'fpe', keepDigits: 3 },
    { method: 'prefix', keepDigits: 3 },
  ] as NumberFieldRule[]) {
    for (const raw of ['anonymous', '', 's']) {
      const p = run(acme, rule, raw)!;
      t.same(
        [p.token, p.fpe, p.prefix, p.extension],
        [null, undefined, undefined, undefined],
        `${rule.method} ${JSON.stringify(raw)}`,
      );
    }
  }
});
