import t from 'tap';
import { isSealed, open, seal, sealedKid, storeKey, tenantSpoolKey } from '../../src/storage-seal.js';

const storage = Buffer.from('5f1c9a2b7e3d4c60a8b1e2f3d4c5b6a7980f1e2d3c4b5a69788796a5b4c3d2e1', 'hex');

t.test('a sealed line opens under its key and holds no plaintext', async (t) => {
  const k = storeKey(storage, 'consent');
  const text = JSON.stringify({ tenant: 'acme', extension: '2001', recording: true });
  const line = seal(k, text);
  t.ok(isSealed(line));
  t.equal(sealedKid(line), 's1');
  t.notOk(line.includes('2001') || line.includes('acme') || line.includes('\n'));
  t.same(open(k, line), { ok: true, text });
  t.not(seal(k, text), line, 'a fresh IV per seal');
});

t.test('the wrong key, another store, another tenant or an edit does not open', async (t) => {
  const line = seal(storeKey(storage, 'consent'), 'x');
  const other = Buffer.from(storage);
  other[0] ^= 1;
  t.same(open(storeKey(other, 'consent'), line), { ok: false, reason: 'auth-failed' });
  t.same(open(storeKey(storage, 'audit'), line), { ok: false, reason: 'auth-failed' });
  t.same(open(storeKey(storage, 'consent', 's2'), line), { ok: false, reason: 'other-key' });
  const idKey = Buffer.alloc(32, 3).map((b, i) => b + i);
  const acme = seal(tenantSpoolKey(Buffer.from(idKey), 'acme'), 'r');
  t.same(open(tenantSpoolKey(Buffer.from(idKey), 'globex'), acme), { ok: false, reason: 'other-key' });
  const flipped = acme.slice(0, -3) + (acme.at(-3) === 'A' ? 'B' : 'A') + acme.slice(-2);
  t.same(open(tenantSpoolKey(Buffer.from(idKey), 'acme'), flipped), { ok: false, reason: 'auth-failed' });
  t.same(open(storeKey(storage, 'consent'), '{"plain":1}'), { ok: false, reason: 'not-sealed' });
});

t.test('every seal draws its own IV, across pool refills', async (t) => {
  const k = storeKey(storage, 'audit');
  const ivs = new Set<string>();
  const n = 3000; // more than one pool of 1,024
  for (let i = 0; i < n; i++) {
    const line = seal(k, 'same text');
    ivs.add(
      Buffer.from(line.slice(line.lastIndexOf('.') + 1), 'base64url')
        .subarray(0, 12)
        .toString('hex'),
    );
    if (i % 1000 === 0) t.same(open(k, line), { ok: true, text: 'same text' });
  }
  t.equal(ivs.size, n, 'no IV used twice');
});
