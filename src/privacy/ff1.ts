// NIST SP 800-38G FF1 format-preserving encryption over AES (node:crypto
// only). Pure functions of key, tweak and numeral string; tested against the
// NIST sample vectors. One AES-ECB context per key does every block.
import { createCipheriv, type Cipher } from 'node:crypto';
import { GatewayError } from '../errors.js';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
/** SP 800-38G Rev. 1: radix^minlen >= 1,000,000; for digits that is 6. */
export const FF1_MIN_DOMAIN = 1_000_000n;

export interface Ff1 {
  encrypt(numerals: string, tweak?: Buffer): string;
  decrypt(numerals: string, tweak?: Buffer): string;
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

function numRadix(s: string, radix: bigint): bigint {
  let x = 0n;
  for (const ch of s) x = x * radix + BigInt(ALPHABET.indexOf(ch));
  return x;
}

function strRadix(x: bigint, m: number, radix: bigint): string {
  const out = new Array<string>(m);
  for (let i = m - 1; i >= 0; i--) {
    out[i] = ALPHABET[Number(x % radix)]!;
    x /= radix;
  }
  return out.join('');
}

function bytesOf(x: bigint, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = len - 1; i >= 0 && x > 0n; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

function numBytes(b: Buffer): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + b.toString('hex'));
}

/** FF1 with AES-128/192/256 (by key length) for radix 2..36, lower-case alphabet. */
export function createFf1(key: Buffer, radix = 10): Ff1 {
  if (![16, 24, 32].includes(key.length))
    throw new GatewayError('GW_PRIVACY_INVALID', 'FF1 needs an AES key of 16, 24 or 32 bytes');
  if (!Number.isInteger(radix) || radix < 2 || radix > 36)
    throw new GatewayError('GW_PRIVACY_INVALID', 'FF1 radix must be 2..36');
  const ecb: Cipher = createCipheriv(`aes-${key.length * 8}-ecb`, key, null).setAutoPadding(false);
  const R = BigInt(radix);
  const valid = new RegExp(`^[${ALPHABET.slice(0, radix).replace(/(.)(.*)(.)/, '$1-$3')}]*$`);
  const ciph = (block: Buffer): Buffer => ecb.update(block);

  // CBC-MAC with a zero IV over whole blocks: the FF1 PRF.
  function prf(data: Buffer): Buffer {
    let y: Buffer = Buffer.alloc(16);
    for (let off = 0; off < data.length; off += 16) {
      const x = Buffer.alloc(16);
      for (let j = 0; j < 16; j++) x[j] = y[j]! ^ data[off + j]!;
      y = ciph(x);
    }
    return y;
  }

  function rounds(X: string, T: Buffer, decrypt: boolean): string {
    const n = X.length;
    if (!valid.test(X)) throw new GatewayError('GW_PRIVACY_INVALID', 'FF1 input has a numeral outside the radix');
    if (R ** BigInt(n) < FF1_MIN_DOMAIN || n > 1024)
      throw new GatewayError('GW_PRIVACY_INVALID', 'FF1 input length outside the allowed domain');
    const u = Math.floor(n / 2);
    const v = n - u;
    let A = X.slice(0, u);
    let B = X.slice(u);
    const b = Math.ceil(bitLength(R ** BigInt(v) - 1n) / 8);
    const d = 4 * Math.ceil(b / 4) + 4;
    const t = T.length;
    const P = Buffer.concat([
      Buffer.from([1, 2, 1]),
      bytesOf(R, 3),
      Buffer.from([10, u % 256]),
      bytesOf(BigInt(n), 4),
      bytesOf(BigInt(t), 4),
    ]);
    const pad = (((-t - b - 1) % 16) + 16) % 16;
    const modU = R ** BigInt(u);
    const modV = R ** BigInt(v);
    for (let k = 0; k < 10; k++) {
      const i = decrypt ? 9 - k : k;
      const Q = Buffer.concat([T, Buffer.alloc(pad), Buffer.from([i]), bytesOf(numRadix(decrypt ? A : B, R), b)]);
      const r = prf(Buffer.concat([P, Q]));
      const blocks = [r];
      for (let j = 1; j < Math.ceil(d / 16); j++) {
        const x = Buffer.alloc(16);
        x.writeUInt32BE(j, 12);
        for (let q = 0; q < 16; q++) x[q] = x[q]! ^ r[q]!;
        blocks.push(ciph(x));
      }
      const y = numBytes(Buffer.concat(blocks).subarray(0, d));
      const m = i % 2 === 0 ? u : v;
      const mod = m === u ? modU : modV;
      if (!decrypt) {
        const c = (((numRadix(A, R) + y) % mod) + mod) % mod;
        A = B;
        B = strRadix(c, m, R);
      } else {
        const c = (((numRadix(B, R) - y) % mod) + mod) % mod;
        B = A;
        A = strRadix(c, m, R);
      }
    }
    return A + B;
  }

  return {
    encrypt: (numerals, tweak = Buffer.alloc(0)) => rounds(numerals, tweak, false),
    decrypt: (numerals, tweak = Buffer.alloc(0)) => rounds(numerals, tweak, true),
  };
}
