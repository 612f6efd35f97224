import t from 'tap';
import { createHash } from 'node:crypto';
import { pseudonym, TOKEN_BYTES } from '../../src/privacy/pseudonymise.js';

const keyA = { keyId: 'a1', secret: Buffer.alloc(32, 1) };
const keyB = { keyId: 'b1', secret: Buffer.alloc(32, 2) };

t.test('tokens are keyed, deterministic, url-safe and 128 bits', async (t) => {
  const tok = pseudonym('acme', keyA, 'e164', '+447700900123');
  t.equal(tok, pseudonym('acme', keyA, 'e164', '+447700900123'));
  t.match(tok, /^[A-Za-z0-9_-]{22}$/);
  t.equal(Buffer.from(tok, 'base64url').length, TOKEN_BYTES);
  t.not(tok, pseudonym('acme', keyB, 'e164', '+447700900123'), 'another key, another token');
  t.not(
    tok,
    pseudonym('globex', keyA, 'e164', '+447700900123'),
    'another tenant, another token even with the same key',
  );
  t.not(tok, pseudonym('acme', keyA, 'invalid', '+447700900123'), 'kinds are separate domains');
});

t.test('a token is not a plain hash of the number', async (t) => {
  const tok = pseudonym('acme', keyA, 'e164', '+447700900123');
  for (const alg of ['sha256', 'sha1', 'md5']) {
    for (const input of ['+447700900123', '447700900123', 'acme\u0000e164\u0000+447700900123']) {
      const plain = createHash(alg).update(input).digest();
      t.not(tok, plain.subarray(0, TOKEN_BYTES).toString('base64url'), `${alg}(${input.length} chars)`);
    }
  }
});
