// The consent registry's durable form, owned here: a snapshot (consent.json)
// replaced atomically (temp file, fsync, rename, fsync the directory), and a
// write-ahead journal (consent.journal) that makes a change and its audit
// entries one durable step. A change set is journalled (one append, one
// fdatasync) before its audit entries are written and before the snapshot
// takes it; at start every journalled change set the snapshot does not hold
// yet is completed: its missing audit entries written, then applied. So after
// a crash at any instant, store and audit log agree. Holds tenant ids,
// extensions, flags, actors and times: no numbers. Encrypted at rest: the
// snapshot is one sealed document, each journal record one sealed line, under
// the consent store's key (store-cipher.ts); the journal stays append-only.
import {
  closeSync,
  constants,
  fdatasync,
  fdatasyncSync,
  ftruncate,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  write,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.js';
import { GatewayError } from '../errors.js';
import { isSealed } from '../storage-seal.js';
import type { StoreCipher } from '../store-cipher.js';

export const ConsentEntry = z
  .object({
    recording: z.boolean(),
    changedBy: z.string().min(1).max(100),
    changedAt: z.iso.datetime({ offset: false }),
  })
  .strict();
export type StoredConsent = z.infer<typeof ConsentEntry>;

const Extension = z.string().regex(/^[0-9]{1,6}$/);

/** One change as history keeps it (the registry's ConsentChange without the tenant, which is the key). */
export const HistoryEntry = z
  .object({
    extension: Extension,
    recording: z.boolean(),
    previous: z.boolean(),
    changedBy: z.string().min(1).max(100),
    changedAt: z.iso.datetime({ offset: false }),
  })
  .strict();
export type HistoryEntry = z.infer<typeof HistoryEntry>;

const Tenants = z.record(z.string(), z.record(Extension, ConsentEntry));

const StoreFileV1 = z.object({ version: z.literal(1), tenants: Tenants }).strict();
const StoreFile = z
  .object({
    version: z.literal(2),
    /** The last journalled change set this snapshot holds. */
    appliedTxn: z.number().int().min(0),
    tenants: Tenants,
    /** Per tenant, oldest first: every change within retention. */
    history: z.record(z.string(), z.array(HistoryEntry)),
  })
  .strict();
export type ConsentData = z.infer<typeof Tenants>;
export type ConsentHistory = Record<string, HistoryEntry[]>;

/** One change set: what the journal holds, enough to write its audit entries and apply it. */
export const JournalRecord = z
  .object({
    txn: z.number().int().min(1),
    tenant: z.string().min(1),
    /** `set`: changes applied; `expire`: history and entries forgotten under retention (removed per tenant). */
    kind: z.enum(['set', 'expire']),
    changes: z.array(HistoryEntry.extend({ tenant: z.string().min(1) })),
    /** For `expire`: the cutoff (ms) and the tenants still configured. */
    cutoffMs: z.number().optional(),
    liveTenants: z.array(z.string()).optional(),
  })
  .strict();
export type JournalRecord = z.infer<typeof JournalRecord>;

export interface StoreState {
  readonly data: ConsentData;
  readonly history: ConsentHistory;
  readonly appliedTxn: number;
}

export type LoadResult =
  | {
      readonly readable: true;
      readonly data: ConsentData;
      readonly history: ConsentHistory;
      readonly appliedTxn: number;
      /** Journalled change sets the snapshot does not hold yet (a crash in between): to complete, in order. */
      readonly pending: readonly JournalRecord[];
      /** The snapshot was v1 (before history): it is rewritten as v2 at the first commit. */
      readonly migrated?: boolean;
    }
  | { readonly readable: false; readonly problem: string };

export interface ConsentStore {
  readonly path: string;
  load(): LoadResult;
  /** Durable when it resolves: the change set is journalled (one append, one fdatasync, off the event loop). */
  journal(rec: JournalRecord): Promise<void>;
  /** The same, synchronously: recovery at start, before anything else runs. */
  journalSync(rec: JournalRecord): void;
  /** Replaces the snapshot, then empties the journal (everything in it is in the snapshot). Serialised. */
  commit(state: StoreState): Promise<void>;
  /** A snapshot of just these entries (no history): for tools and tests that write a state directly. */
  save(data: ConsentData): Promise<void>;
}

/** A consent store file's entries (v2, or v1 from before history), for tools that read a copy (`replay --consent`). */
export function parseConsentFile(json: unknown): { ok: true; data: ConsentData } | { ok: false; problem: string } {
  const v2 = StoreFile.safeParse(json);
  if (v2.success) return { ok: true, data: v2.data.tenants };
  const v1 = StoreFileV1.safeParse(json);
  if (v1.success) return { ok: true, data: v1.data.tenants };
  const issue = v2.error.issues[0];
  return { ok: false, problem: `${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim() };
}

/** A store that holds `data` in memory and refuses every change (a replay changes no consent). */
export function readOnlyConsentStore(path: string, data: ConsentData): ConsentStore {
  const refuse = () => new GatewayError('GW_CONSENT_STORE', 'a replay changes no consent');
  return {
    path,
    load: () => ({ readable: true, data, history: {}, appliedTxn: 0, pending: [] }),
    journal: () => Promise.reject(refuse()),
    journalSync: () => {
      throw refuse();
    },
    commit: () => Promise.reject(refuse()),
    save: () => Promise.reject(refuse()),
  };
}

export const CONSENT_FILE = 'consent.json';
export const CONSENT_JOURNAL = 'consent.journal';

const OPEN_JOURNAL = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

/** One line or document of the store: opened under the cipher; plaintext only without one (tools, older tests). */
export function decodeConsentText(
  text: string,
  cipher: StoreCipher | undefined,
): { ok: true; text: string } | { ok: false; problem: string } {
  const line = text.trimEnd();
  if (cipher === undefined)
    return isSealed(line) ? { ok: false, problem: 'is encrypted, and no storage key was given' } : { ok: true, text };
  const r = cipher.open(line);
  return r.ok ? { ok: true, text: r.text } : { ok: false, problem: r.problem };
}

function readJournal(
  path: string,
  cipher: StoreCipher | undefined,
): { records: JournalRecord[] } | { problem: string } {
  let text: string;
  try {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return { records: [] };
    return { problem: `journal ${path} cannot be read (${codeOf(err)})` };
  }
  const lines = text.split('\n');
  // The part after the last newline: empty, or a torn append that was never acknowledged (no audit entry exists for it).
  lines.pop();
  const records: JournalRecord[] = [];
  for (const line of lines) {
    const opened = decodeConsentText(line, cipher);
    if (!opened.ok) return { problem: `journal ${path} holds a line that ${opened.problem}` };
    let json: unknown;
    try {
      json = JSON.parse(opened.text);
    } catch {
      return { problem: `journal ${path} holds a line that is not JSON` };
    }
    const r = JournalRecord.safeParse(json);
    if (!r.success) return { problem: `journal ${path} holds a line that is not a change set` };
    records.push(r.data);
  }
  return { records };
}

/** `cipher`: encryption at rest (storeCipherOf(loaded, 'consent', dir)); the gateway always gives one. */
export function openConsentStore(dir: string, cipher?: StoreCipher): ConsentStore {
  const sealed = (text: string) => (cipher === undefined ? text : cipher.seal(text));
  const path = join(dir, CONSENT_FILE);
  const journalPath = join(dir, CONSENT_JOURNAL);
  let chain: Promise<unknown> = Promise.resolve();
  let fd: number | undefined;
  const journalFd = (): number => (fd ??= openSync(journalPath, OPEN_JOURNAL, 0o600));
  let state: StoreState = { data: {}, history: {}, appliedTxn: 0 };
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => undefined);
    return run;
  };
  const fail = (what: string, err: unknown) =>
    new GatewayError('GW_CONSENT_STORE', `consent store ${what}: write failed (${codeOf(err)})`, { cause: err });
  const snapshot = async (s: StoreState) => {
    try {
      await writeFileAtomic(
        path,
        sealed(JSON.stringify({ version: 2, appliedTxn: s.appliedTxn, tenants: s.data, history: s.history })) + '\n',
        dir,
      );
    } catch (err) {
      throw fail(path, err);
    }
    state = s;
  };
  return {
    path,
    load() {
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        // Temp files are what a crash mid-write leaves behind; the real file is intact.
        for (const f of readdirSync(dir))
          if (f.startsWith(`${CONSENT_FILE}.`) && f.endsWith('.tmp')) unlinkSync(join(dir, f));
      } catch (err) {
        return { readable: false, problem: `storage directory not usable (${codeOf(err)})` };
      }
      let text: string | undefined;
      try {
        const f = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          text = readFileSync(f, 'utf8');
        } finally {
          closeSync(f);
        }
      } catch (err) {
        if (codeOf(err) !== 'ENOENT') return { readable: false, problem: `cannot read (${codeOf(err)})` };
      }
      let loaded: StoreState = { data: {}, history: {}, appliedTxn: 0 };
      let migrated = false;
      if (text !== undefined) {
        const opened = decodeConsentText(text, cipher);
        if (!opened.ok) return { readable: false, problem: `the file ${opened.problem}` };
        let json: unknown;
        try {
          json = JSON.parse(opened.text);
        } catch {
          return { readable: false, problem: 'not valid JSON' };
        }
        const v2 = StoreFile.safeParse(json);
        const v1 = v2.success ? undefined : StoreFileV1.safeParse(json);
        if (v2.success) loaded = { data: v2.data.tenants, history: v2.data.history, appliedTxn: v2.data.appliedTxn };
        else if (v1?.success) {
          // Before history and the journal: its entries are the state; history starts at the upgrade.
          loaded = { data: v1.data.tenants, history: {}, appliedTxn: 0 };
          migrated = true;
        } else return { readable: false, problem: 'does not match the consent store schema' };
      }
      const j = readJournal(journalPath, cipher);
      if ('problem' in j) return { readable: false, problem: j.problem };
      state = loaded;
      return {
        readable: true,
        ...loaded,
        pending: j.records.filter((r) => r.txn > loaded.appliedTxn),
        ...(migrated ? { migrated } : {}),
      };
    },
    journal(rec) {
      const line = Buffer.from(sealed(JSON.stringify(rec)) + '\n');
      return new Promise<void>((resolve, reject) => {
        let f: number;
        try {
          f = journalFd();
        } catch (err) {
          return reject(fail(journalPath, err));
        }
        write(f, line, 0, line.length, null, (err, n) => {
          if (err || n !== line.length) return reject(fail(journalPath, err ?? { code: 'short write' }));
          fdatasync(f, (e) => (e ? reject(fail(journalPath, e)) : resolve()));
        });
      });
    },
    journalSync(rec) {
      try {
        const f = journalFd();
        const line = sealed(JSON.stringify(rec)) + '\n';
        // One write: a crash leaves the line whole or torn, and a torn one is dropped at load.
        const buf = Buffer.from(line);
        for (let off = 0; off < buf.length;) off += writeSync(f, buf, off, buf.length - off);
        fdatasyncSync(f);
      } catch (err) {
        throw fail(journalPath, err);
      }
    },
    commit(s) {
      return serial(async () => {
        await snapshot(s);
        // Everything journalled is in the snapshot now: a crash before the truncate only leaves records load skips.
        const f = journalFd();
        await new Promise<void>((resolve, reject) =>
          ftruncate(f, 0, (err) => (err ? reject(fail(journalPath, err)) : fdatasync(f, () => resolve()))),
        );
      });
    },
    save(data) {
      return serial(() => snapshot({ data, history: state.history, appliedTxn: state.appliedTxn }));
    },
  };
}
