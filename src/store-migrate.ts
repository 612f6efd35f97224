// Every file of the stores sealed under the storage key (audit log and its
// segments, consent snapshot and journal, suppression lists), read once at
// start: a plaintext file (written before encryption at rest) is sealed in
// place, atomically (temp file, fsync, rename, fsync the directory); a file
// sealed under another storage key, or one that does not open, is a start-up
// error naming the store and the file. `keys rotate storage` uses the same
// walk to re-seal every line under the new key.
import { closeSync, constants, readdirSync, readFileSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { auditLogFiles, type AuditEntryInput } from './audit/audit-log.js';
import { CONSENT_FILE, CONSENT_JOURNAL } from './consent/store.js';
import { GatewayError } from './errors.js';
import { STORE_NAMES, unreadableStoreError, type SealedStore, type StoreCipher } from './store-cipher.js';
import { suppressionDir } from './subject/suppression-store.js';

export interface StoreFileRef {
  readonly store: SealedStore;
  readonly path: string;
  /** lines: one sealed line per entry or record (append-only files); document: the whole file is one sealed line. */
  readonly form: 'lines' | 'document';
}

/** The files of the sealed stores under a state dir (those that exist). */
export function storeFiles(stateDir: string, auditPath: string = join(stateDir, 'audit.jsonl')): StoreFileRef[] {
  const out: StoreFileRef[] = auditLogFiles(auditPath).map((path) => ({ store: 'audit', path, form: 'lines' }));
  out.push({ store: 'consent', path: join(stateDir, CONSENT_FILE), form: 'document' });
  out.push({ store: 'consent', path: join(stateDir, CONSENT_JOURNAL), form: 'lines' });
  const sdir = suppressionDir(stateDir);
  let names: string[] = [];
  try {
    names = readdirSync(sdir).filter((n) => /^[a-z0-9][a-z0-9_-]{0,62}\.json$/.test(n));
  } catch {
    // no suppression lists yet
  }
  for (const n of names.sort()) out.push({ store: 'suppression', path: join(sdir, n), form: 'document' });
  return out;
}

/** Never through a symlink planted in a store's place. undefined when the file does not exist. */
function readStoreFile(f: StoreFileRef): string | undefined {
  try {
    const fd = openSync(f.path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT') return undefined;
    throw new GatewayError(
      'GW_STORAGE',
      code === 'ELOOP'
        ? `${STORE_NAMES[f.store]} ${f.path} is a symbolic link: refused (nothing the gateway writes is reached through a link) — fix: remove it and find out who put it there`
        : `${STORE_NAMES[f.store]} ${f.path}: cannot read (${code})`,
    );
  }
}

export interface SealedFile {
  readonly store: SealedStore;
  readonly path: string;
  /** Lines (or 1 for a document) sealed by this pass. */
  readonly units: number;
  /** What they were: plaintext (migrated) or sealed under the other key (rotation). */
  readonly from: 'plaintext' | 'other-key';
}

/** The audit entries of a migration or re-seal: one per store, counts only (file names hold tenant ids, and need not be said). */
export function storeMigrateEntries(done: readonly SealedFile[], actor: string): AuditEntryInput[] {
  const by = new Map<string, { files: number; units: number }>();
  for (const d of done) {
    const k = `${d.store}|${d.from}`;
    const c = by.get(k) ?? { files: 0, units: 0 };
    by.set(k, { files: c.files + 1, units: c.units + d.units });
  }
  return [...by].map(([k, c]) => {
    const [store, from] = k.split('|') as [SealedStore, SealedFile['from']];
    return {
      actor,
      action: from === 'plaintext' ? STORE_MIGRATE_ACTION : STORE_RESEAL_ACTION,
      tenant: '*',
      subject: store,
      detail: { files: c.files, units: c.units },
    };
  });
}

/** Audited once per store when an older version's plaintext files are sealed. */
export const STORE_MIGRATE_ACTION = 'storage.encrypt';
/** Audited once per store when `keys rotate storage` re-seals it under the new key. */
export const STORE_RESEAL_ACTION = 'storage.reseal';

export interface StoreScan {
  /** Files that hold plaintext (before encryption at rest). */
  readonly plaintext: readonly StoreFileRef[];
  /** Files with lines under a key other than the one new lines get (a rotation not finished). */
  readonly stale: readonly StoreFileRef[];
  /** Files that exist. */
  readonly files: readonly StoreFileRef[];
}

type Plan = { f: StoreFileRef; units: string[]; torn: string; change: boolean; plaintext: boolean; stale: boolean };

function plan(f: StoreFileRef, text: string, cipher: StoreCipher): Plan {
  let units: string[];
  let torn = '';
  if (f.form === 'document') units = text.trim() === '' ? [] : [text.trim()];
  else {
    const lines = text.split('\n');
    // The journal's torn tail (after the last newline) was never acknowledged: load drops it, and so does a re-seal.
    torn = lines.pop() ?? '';
    units = lines.filter((l) => l.length > 0);
  }
  let plaintext = false;
  let stale = false;
  let sealedAny = false;
  units.forEach((u, i) => {
    const r = cipher.open(u);
    const where = f.form === 'lines' ? ` line ${i + 1}` : '';
    if (r.ok) {
      sealedAny = true;
      if (!cipher.current(u)) stale = true;
    } else if (r.reason !== 'plaintext') throw unreadableStoreError(f.store, f.path, where, r);
    else plaintext = true;
    // An older version wrote a whole file in plaintext; one plaintext line among sealed ones is no upgrade, and is not sealed over.
    if (plaintext && sealedAny)
      throw new GatewayError(
        'GW_STORAGE_KEY',
        `${STORE_NAMES[f.store]} ${f.path}${where}: plaintext and encrypted lines in one file (a line was added by something other than the gateway) — fix: keep the file for the investigation (move it aside) and restore it from a backup`,
      );
  });
  return { f, units, torn, change: plaintext || stale, plaintext, stale };
}

/** Reads every store file under its cipher: throws (GW_STORAGE_KEY, naming the store and file) on one that does not open. */
export function scanStores(
  files: readonly StoreFileRef[],
  ciphers: Readonly<Record<SealedStore, StoreCipher>>,
): StoreScan {
  const plaintext: StoreFileRef[] = [];
  const stale: StoreFileRef[] = [];
  const present: StoreFileRef[] = [];
  for (const f of files) {
    const text = readStoreFile(f);
    if (text === undefined) continue;
    present.push(f);
    const p = plan(f, text, ciphers[f.store]);
    if (p.plaintext) plaintext.push(f);
    if (p.stale) stale.push(f);
  }
  return { plaintext, stale, files: present };
}

/**
 * Seals in place, atomically per file, every unit that is plaintext or under
 * another of the cipher's keys; units already under the write key are kept
 * byte for byte. Throws before writing anything when a file does not open.
 */
export async function sealStores(
  files: readonly StoreFileRef[],
  ciphers: Readonly<Record<SealedStore, StoreCipher>>,
): Promise<SealedFile[]> {
  const plans: Plan[] = [];
  for (const f of files) {
    const text = readStoreFile(f);
    if (text === undefined) continue;
    const p = plan(f, text, ciphers[f.store]);
    if (p.change) plans.push(p);
  }
  const done: SealedFile[] = [];
  for (const p of plans) {
    const c = ciphers[p.f.store];
    let count = 0;
    const sealed = p.units.map((u) => {
      if (c.current(u)) return u;
      count++;
      const r = c.open(u);
      return c.seal(r.ok ? r.text : u);
    });
    // A torn tail is dropped: it was never acknowledged (and it cannot be sealed as a whole record).
    void p.torn;
    await writeFileAtomic(p.f.path, sealed.map((l) => `${l}\n`).join(''));
    done.push({ store: p.f.store, path: p.f.path, units: count, from: p.plaintext ? 'plaintext' : 'other-key' });
  }
  return done;
}
