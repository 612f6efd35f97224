// Authenticated encryption at rest (AES-256-GCM via node:crypto) for the
// gateway's files. One sealed unit is one line of text:
//
//   cv1.<kid>.<base64url(iv 12 bytes | ciphertext | tag 16 bytes)>
//
// `kid` names the key that sealed it (a store key id, or `t-<tenant>` for a
// tenant's spool key); the associated data binds the line to its store and key
// id, so a line moved from one store (or tenant) to another does not open.
// Keys are never used directly: each store gets its own key derived from the
// storage key (HKDF-SHA256), each tenant's spool key from the tenant's id key,
// so one leaked derived key opens one store only.
import { createCipheriv, createDecipheriv, hkdfSync, randomFillSync } from 'node:crypto';

export const SEALED_PREFIX = 'cv1.';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID = /^[a-z0-9][a-z0-9_-]{0,70}$/;

export interface SealKey {
  /** Names the key in the sealed line (never secret). */
  readonly kid: string;
  /** 32 bytes. */
  readonly key: Buffer;
  /** What the line belongs to (e.g. `spool`, `audit`, `consent`): bound as associated data. */
  readonly store: string;
}

/** A store's key, derived from the storage key: `callveil/store/<store>/v1`. */
export function storeKey(storageKey: Buffer, store: string, kid = 's1'): SealKey {
  return deriveKey(storageKey, `callveil/store/${store}/v1`, kid, store);
}

/** A tenant's spool key, derived from the tenant's id key: destroyed with it by `tenant shred`. */
export function tenantSpoolKey(idKey: Buffer, tenant: string): SealKey {
  return deriveKey(idKey, `callveil/spool/${tenant}/v1`, `t-${tenant}`, 'spool');
}

function deriveKey(ikm: Buffer, info: string, kid: string, store: string): SealKey {
  if (!KID.test(kid)) throw new Error(`seal key id ${JSON.stringify(kid)} is not a plain id`);
  const key = Buffer.from(hkdfSync('sha256', ikm, Buffer.from('callveil'), Buffer.from(info), 32));
  return Object.freeze({ kid, key, store });
}

function aad(store: string, kid: string): Buffer {
  return Buffer.from(`callveil|${store}|${kid}`);
}

// IVs are drawn from the CSPRNG 1,024 at a time and each used once: one
// randomBytes call per seal was half of a seal's cost (4 of 8-18 us).
const ivPool = Buffer.alloc(IV_BYTES * 1024);
let ivNext = ivPool.length;

function freshIv(): Buffer {
  if (ivNext >= ivPool.length) {
    randomFillSync(ivPool);
    ivNext = 0;
  }
  const iv = ivPool.subarray(ivNext, ivNext + IV_BYTES);
  ivNext += IV_BYTES;
  return iv;
}

/** Seals one line of text (no newline inside the result). */
export function seal(k: SealKey, plaintext: string): string {
  const iv = freshIv();
  const c = createCipheriv('aes-256-gcm', k.key, iv);
  c.setAAD(aad(k.store, k.kid));
  const body = Buffer.concat([iv, c.update(plaintext, 'utf8'), c.final(), c.getAuthTag()]);
  return `${SEALED_PREFIX}${k.kid}.${body.toString('base64url')}`;
}

export function isSealed(line: string): boolean {
  return line.startsWith(SEALED_PREFIX);
}

/** The key id a sealed line names; undefined when it is not a sealed line. */
export function sealedKid(line: string): string | undefined {
  if (!isSealed(line)) return undefined;
  const dot = line.indexOf('.', SEALED_PREFIX.length);
  return dot < 0 ? undefined : line.slice(SEALED_PREFIX.length, dot);
}

export type OpenResult =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly reason: 'not-sealed' | 'malformed' | 'other-key' | 'auth-failed' };

/**
 * Opens a sealed line. `other-key`: sealed under a key id this key is not;
 * `auth-failed`: the right id but the wrong key, or the line was altered.
 */
export function open(k: SealKey, line: string): OpenResult {
  if (!isSealed(line)) return { ok: false, reason: 'not-sealed' };
  const kid = sealedKid(line);
  if (kid === undefined) return { ok: false, reason: 'malformed' };
  if (kid !== k.kid) return { ok: false, reason: 'other-key' };
  const body = Buffer.from(line.slice(SEALED_PREFIX.length + kid.length + 1).trimEnd(), 'base64url');
  if (body.length < IV_BYTES + TAG_BYTES) return { ok: false, reason: 'malformed' };
  try {
    const d = createDecipheriv('aes-256-gcm', k.key, body.subarray(0, IV_BYTES));
    d.setAAD(aad(k.store, k.kid));
    d.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const text = Buffer.concat([d.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)), d.final()]);
    return { ok: true, text: text.toString('utf8') };
  } catch {
    return { ok: false, reason: 'auth-failed' };
  }
}
