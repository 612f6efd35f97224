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

/** Hex or base64; null when shorter than 32 bytes. */
export function decodeKeyMaterial(text: string): Buffer | null {
  const t = text.trim();
  const buf = /^[0-9a-fA-F]+$/.test(t) && t.length % 2 === 0 ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  return buf.length >= 32 ? buf : null;
}

/** The AES-256 key FF1 uses, derived from the tenant key so HMAC and FF1 never share key bytes. */
export function fpeKeyOf(key: TenantKey): Buffer {
  return createHmac('sha256', key.secret).update('callveil/ff1/aes-256/v1').digest();
}
