import t from 'tap';
import { randomBytes } from 'node:crypto';
import { createFf1 } from '../../src/privacy/ff1.js';

// NIST SP 800-38G FF1 sample vectors (FF1samples.pdf): samples 1 (AES-128) and 7-9 (AES-256).
const K128 = Buffer.from('2B7E151628AED2A6ABF7158809CF4F3C', 'hex');
const K256 = Buffer.from('2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94', 'hex');
const VECTORS: Array<[string, Buffer, number, string, string, string]> = [
  ['sample 1 (AES-128, radix 10, no tweak)', K128, 10, '', '0123456789', '2433477484'],
  ['sample 7 (AES-256, radix 10, no tweak)', K256, 10, '', '0123456789', '6657667009'],
  ['sample 8 (AES-256, radix 10, tweak)', K256, 10, '39383736353433323130', '0123456789', '1001623463'],
  [
    'sample 9 (AES-256, radix 36, tweak)',
    K256,
    36,
    '3737373770717273373737',
    '0123456789abcdefghi',
    'xs8a0azh2avyalyzuwd',
  ],
];

t.test('FF1 matches the NIST sample vectors, both ways', async (t) => {
  for (const [name, key, radix, tweak, pt, ct] of VECTORS) {
    const f = createFf1(key, radix);
    t.equal(f.encrypt(pt, Buffer.from(tweak, 'hex')), ct, `${name}: encrypt`);
    t.equal(f.decrypt(ct, Buffer.from(tweak, 'hex')), pt, `${name}: decrypt`);
  }
});

t.test('FF1 round-trips random digit strings and keeps their length', async (t) => {
  const f = createFf1(randomBytes(32));
  for (let i = 0; i < 200; i++) {
    const len = 6 + (i % 10);
    const pt = Array.from({ length: len }, () => Math.floor(Math.random() * 10)).join('');
    const tweak = randomBytes(i % 12);
    const ct = f.encrypt(pt, tweak);
    t.equal(ct.length, len);
    t.match(ct, /^[0-9]+$/);
    t.equal(f.decrypt(ct, tweak), pt);
  }
});

t.test('FF1 refuses what is outside its domain', async (t) => {
  const f = createFf1(K256);
  t.throws(() => f.encrypt('12345'), { code: 'GW_PRIVACY_INVALID' }, 'fewer than 6 digits (radix^len < 10^6)');
  t.throws(() => f.encrypt('12345a'), { code: 'GW_PRIVACY_INVALID' }, 'a numeral outside the radix');
  t.throws(() => createFf1(Buffer.alloc(20)), { code: 'GW_PRIVACY_INVALID' });
});
