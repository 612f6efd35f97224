// The keyed ids as the README defines them, recomputed here with node:crypto
// directly from the definition (HMAC-SHA256 under the tenant's id key over
// "callveil/id/v1", the domain, the tenant and the parts, NUL-separated; the
// first 16 bytes as letters a-p), so a change to how ids are computed that
// changes an id fails here, not silently in every consumer's dedupe.
import t from 'tap';
import { createHmac, randomBytes } from 'node:crypto';
import {
  callIdOf,
  CDR_ID_FIELDS,
  gapRecordIdOf,
  KEYED_ID,
  legIdOf,
  recordIdOf,
  type CdrIdTuple,
} from '../../src/privacy/ids.js';

function reference(key: Buffer, domain: string, tenant: string, parts: string[]): string {
  const mac = createHmac('sha256', key);
  for (const piece of ['callveil/id/v1', domain, tenant, ...parts].flatMap((p, i) => (i === 0 ? [p] : ['\u0000', p])))
    mac.update(piece);
  return mac
    .digest()
    .subarray(0, 16)
    .reduce((s, b) => s + 'abcdefghijklmnop'[b >> 4]! + 'abcdefghijklmnop'[b & 15]!, '');
}

t.test('ids equal the definition, for every kind, on awkward input', async (t) => {
  const values = [
    'pbx-lab-1795418472.36',
    '195176c06ab8-1529936170.42',
    'tel-447700900204-1795418472.9',
    'caf\u00e9',
    '',
    'a\u0000b',
  ];
  for (let n = 0; n < 50; n++) {
    const key = randomBytes(32);
    const pick = () => values[Math.floor(Math.random() * values.length)]!;
    const tuple = Object.fromEntries(CDR_ID_FIELDS.map((f) => [f, pick()])) as unknown as CdrIdTuple;
    const tenant = n % 2 === 0 ? 'acme' : 'globex';
    const u = pick();
    t.equal(
      recordIdOf(key, tenant, tuple),
      reference(
        key,
        'record',
        tenant,
        CDR_ID_FIELDS.map((f) => tuple[f]),
      ),
    );
    t.equal(callIdOf(key, tenant, u), reference(key, 'call', tenant, [u]));
    t.equal(legIdOf(key, tenant, u), reference(key, 'leg', tenant, [u]));
    t.equal(gapRecordIdOf(key, tenant, u), reference(key, 'gap', tenant, [u]));
    t.match(callIdOf(key, tenant, u), KEYED_ID);
  }
});

t.test('a known vector, so the definition itself cannot drift', async (t) => {
  const key = Buffer.alloc(32, 7);
  // Computed once with node:crypto from the definition (key: 32 bytes of 7); ids published so far must stay.
  t.equal(callIdOf(key, 'acme', 'pbx-lab-1795418472.36'), 'anhpjcagkfdcmilefodjficgnnkbkfcn');
  t.not(callIdOf(key, 'acme', 'x'), callIdOf(key, 'globex', 'x'), 'the tenant is an input');
  t.not(callIdOf(key, 'acme', 'x'), legIdOf(key, 'acme', 'x'), 'the domain is an input');
});
