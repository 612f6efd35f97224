// The suite's store ciphers (under TEST_STORAGE_KEY): what a gateway under
// test seals its audit log, consent store and suppression lists with, so a
// test can read (and tamper with) what it wrote.
import { readFileSync } from 'node:fs';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { storeCipher, type SealedStore, type StoreCipher } from '../../src/store-cipher.js';
import { TEST_STORAGE_KEY } from './audit-key.js';

export const TEST_CIPHERS: Readonly<Record<SealedStore, StoreCipher>> = {
  audit: storeCipher('audit', TEST_STORAGE_KEY),
  consent: storeCipher('consent', TEST_STORAGE_KEY),
  suppression: storeCipher('suppression', TEST_STORAGE_KEY),
};

/** One sealed line's text; throws when it does not open. */
export function openLine(store: SealedStore, line: string): string {
  const r = TEST_CIPHERS[store].open(line);
  if (!r.ok) throw new Error(`${store} line: ${r.problem}`);
  return r.text;
}

/** The entries of a sealed audit log file, oldest first. */
export function auditEntries(path: string): AuditEntry[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(openLine('audit', l)) as AuditEntry);
}

/** A sealed store file's plaintext: each line (or the one document) opened, joined by newlines. */
export function storeText(store: SealedStore, path: string): string {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => openLine(store, l))
    .join('\n');
}
