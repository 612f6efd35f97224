// Versioned tenant keys: a ring per key set, newest first. The newest key
// whose activeFrom has passed signs new records; every unretired key still
// answers lookups (`callveil token`, `callveil reveal`) until it is retired.
import { createHmac } from 'node:crypto';
import type { TenantKey } from './pseudonymise.js';

export interface RingKey extends TenantKey {
  readonly activeFromMs: number;
}

export interface KeyRing {
  /** Unretired keys, newest activeFrom first. Retired keys are not loaded at all. */
  readonly keys: readonly RingKey[];
}

export const EMPTY_RING: KeyRing = Object.freeze({ keys: Object.freeze([]) });

export function createKeyRing(keys: readonly RingKey[]): KeyRing {
  return Object.freeze({ keys: Object.freeze([...keys].sort((a, b) => b.activeFromMs - a.activeFromMs)) });
}

/** The key that signs a record made at `nowMs`; null when none is active yet (records are withheld). */
export function signingKey(ring: KeyRing, nowMs: number): RingKey | null {
  for (const k of ring.keys) if (k.activeFromMs <= nowMs) return k;
  return null;
}

export function findKey(ring: KeyRing, kid: string): RingKey | undefined {
  return ring.keys.find((k) => k.keyId === kid);
}

/**
 * Why a key's text is not usable key material, or undefined. Hex (two digits
 * per byte; an odd count is a typo, never read as base64) or base64/base64url
 * that round-trips cleanly; at least 32 bytes.
 */
export function keyMaterialProblem(text: string): string | undefined {
  const t = text.trim();
  if (/^[0-9a-fA-F]+$/.test(t)) {
    if (t.length % 2 !== 0) return `an odd number of hex digits (${t.length}): a hex key has two per byte`;
    return t.length < 64 ? `${t.length / 2} bytes, fewer than 32` : undefined;
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) && !/^[A-Za-z0-9_-]+$/.test(t)) return 'neither hex nor base64';
  const buf = Buffer.from(t, 'base64');
  const strip = (s: string) => s.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  if (strip(buf.toString('base64')) !== strip(t)) return 'not clean base64 (it does not decode to whole bytes)';
  return buf.length < 32 ? `${buf.length} bytes, fewer than 32` : undefined;
}

/** Hex or base64 (see keyMaterialProblem); null when it is not usable key material. */
export function decodeKeyMaterial(text: string): Buffer | null {
  if (keyMaterialProblem(text) !== undefined) return null;
  const t = text.trim();
  return /^[0-9a-fA-F]+$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
}

/** Key material that decodes but is no secret: every byte the same (all zeros, a placeholder). */
export function weakKeyProblem(key: Buffer): string | undefined {
  return key.length > 0 && key.every((b) => b === key[0])
    ? `every byte is 0x${key[0]!.toString(16).padStart(2, '0')}`
    : undefined;
}

/** The AES-256 key FF1 uses, derived from the tenant key so HMAC and FF1 never share key bytes. */
export function fpeKeyOf(key: TenantKey): Buffer {
  return createHmac('sha256', key.secret).update('callveil/ff1/aes-256/v1').digest();
}
