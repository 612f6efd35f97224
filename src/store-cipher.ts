// How the gateway's own stores (audit log, consent store and journal,
// suppression lists) are encrypted at rest: every line (an audit entry, a
// journal record) or whole snapshot document is one sealed line
// (storage-seal.ts) under the store's key derived from the storage key. The
// key id in each line is a fingerprint of the storage key, so a line sealed
// under another storage key is told apart from one that was altered. While a
// storage key rotation is under way (keys file storageKeyNext), lines under
// either key open; lines are sealed under the one the writer was given.
import { createHmac } from 'node:crypto';
import type { LoadedConfig } from './config/load.js';
import { GatewayError } from './errors.js';
import { isSealed, open, seal, sealedKid, storeKey, type SealKey } from './storage-seal.js';

/** The stores sealed under the storage key (the spool is sealed under per-tenant keys). */
export const SEALED_STORES = ['audit', 'consent', 'suppression'] as const;
export type SealedStore = (typeof SEALED_STORES)[number];

/** Says in words what each store is, for messages. */
export const STORE_NAMES: Readonly<Record<SealedStore, string>> = {
  audit: 'audit log',
  consent: 'consent store',
  suppression: 'suppression list',
};

/** A storage key's fingerprint: the key id its lines carry (never secret, never the key). */
export function storageKid(storageKey: Buffer): string {
  return `k${createHmac('sha256', storageKey).update('callveil/storage-key-id/v1').digest('hex').slice(0, 12)}`;
}

export type OpenLine =
  | { readonly ok: true; readonly text: string; readonly kid: string }
  | {
      readonly ok: false;
      /** plaintext: a line written before encryption at rest; other-key: sealed under a storage key not given. */
      readonly reason: 'plaintext' | 'other-key' | 'auth-failed' | 'malformed';
      /** One phrase, no data from the line. */
      readonly problem: string;
    };

export interface StoreCipher {
  readonly store: SealedStore;
  /** The key id new lines are sealed under. */
  readonly kid: string;
  seal(text: string): string;
  open(line: string): OpenLine;
  /** true when the line is sealed under the key new lines get (nothing to re-seal). */
  current(line: string): boolean;
}

/**
 * The cipher of one store. `write` seals new lines; `read` lists every key
 * whose lines open (write is always among them).
 */
export function storeCipher(store: SealedStore, write: Buffer, read: readonly Buffer[] = []): StoreCipher {
  const mk = (k: Buffer): SealKey => storeKey(k, store, storageKid(k));
  const w = mk(write);
  const keys = new Map<string, SealKey>([[w.kid, w]]);
  for (const k of read) {
    const s = mk(k);
    keys.set(s.kid, s);
  }
  return {
    store,
    kid: w.kid,
    seal: (text) => seal(w, text),
    current: (line) => sealedKid(line) === w.kid,
    open(line) {
      if (!isSealed(line))
        return { ok: false, reason: 'plaintext', problem: 'is plaintext, written before encryption at rest' };
      const kid = sealedKid(line);
      const k = kid === undefined ? undefined : keys.get(kid);
      if (k === undefined)
        return {
          ok: false,
          reason: kid === undefined ? 'malformed' : 'other-key',
          problem:
            kid === undefined
              ? 'is not a sealed line (torn or edited)'
              : `is sealed under another storage key (key id ${kid}; the storage key given has ${w.kid})`,
        };
      const r = open(k, line);
      if (r.ok) return { ok: true, text: r.text, kid: k.kid };
      return {
        ok: false,
        reason: r.reason === 'other-key' || r.reason === 'not-sealed' ? 'malformed' : r.reason,
        problem:
          r.reason === 'auth-failed'
            ? 'does not open under its key (the line was altered)'
            : 'is not a sealed line (torn or edited)',
      };
    },
  };
}

/** What a start-up error says to do about a missing storage key. */
export function storageKeyFix(keysFile: string | undefined): string {
  return keysFile === undefined
    ? 'set CALLVEIL_STORAGE_KEY (64 hex characters; `callveil keys generate storage` makes one)'
    : `\`callveil keys generate storage --keys-file ${keysFile}\` (adds storageKey), or set CALLVEIL_STORAGE_KEY`;
}

/**
 * The ciphers of a loaded configuration's stores, or a start-up error naming
 * the store: there is no plaintext fallback, encryption at rest is a promise.
 */
export function storeCipherOf(
  loaded: Pick<LoadedConfig, 'gatewayKeys' | 'rulesSource'>,
  store: SealedStore,
  path: string,
): StoreCipher {
  const key = loaded.gatewayKeys?.storageKey;
  if (key === null || key === undefined)
    throw new GatewayError(
      'GW_STORAGE_KEY',
      `no storage key: the ${STORE_NAMES[store]} ${path} is encrypted at rest — fix: ${storageKeyFix(loaded.rulesSource?.keysFile)}`,
    );
  const next = loaded.gatewayKeys?.storageKeyNext;
  return storeCipher(store, key, next === null || next === undefined ? [] : [next]);
}

/** The ciphers of every sealed store of a configuration; a start-up error naming them when there is no storage key. */
export function storeCiphersOf(
  loaded: Pick<LoadedConfig, 'gatewayKeys' | 'rulesSource'>,
  stateDir: string,
): Record<SealedStore, StoreCipher> {
  const key = loaded.gatewayKeys?.storageKey;
  if (key === null || key === undefined)
    throw new GatewayError(
      'GW_STORAGE_KEY',
      `no storage key: the audit log, consent store and suppression lists in ${stateDir} are encrypted at rest — fix: ${storageKeyFix(loaded.rulesSource?.keysFile)}`,
    );
  const next = loaded.gatewayKeys?.storageKeyNext;
  const read = next === null || next === undefined ? [] : [next];
  return {
    audit: storeCipher('audit', key, read),
    consent: storeCipher('consent', key, read),
    suppression: storeCipher('suppression', key, read),
  };
}

/** The error for a store line that does not open: names the store, the file and what to do. */
export function unreadableStoreError(
  store: SealedStore,
  path: string,
  where: string,
  r: Extract<OpenLine, { ok: false }>,
): GatewayError {
  const fix =
    r.reason === 'plaintext'
      ? 'fix: start the gateway once (it encrypts plaintext stores in place), or run `callveil keys migrate --config <file>`'
      : r.reason === 'other-key'
        ? 'fix: give the gateway the storage key this store was written with (keys file storageKey, or CALLVEIL_STORAGE_KEY); a lost storage key makes the store unreadable (README "Keys the gateway holds")'
        : 'fix: keep the file for the investigation (move it aside) and restore it from a backup';
  return new GatewayError('GW_STORAGE_KEY', `${STORE_NAMES[store]} ${path}${where}: ${r.problem} — ${fix}`);
}
