// Append-only, tamper-evident audit trail: JSONL, each entry carrying a keyed
// MAC (HMAC-SHA256 under the audit key from the keys file) over its content
// and the MAC of the entry before it. Without the key nobody can write an
// entry that verifies, so an edited, removed, renumbered or reordered entry
// breaks the chain; a cut tail is caught against the chain head the gateway
// publishes off the box (head-publisher.ts). Entries say who did what to which
// tenant, when; every entry passes the egress first, never a raw number.
// Encrypted at rest: each line is one entry sealed under the audit store's key
// (store-cipher.ts). The MAC chain is over the plaintext entry, so a verify
// names the same problems whether or not the log is sealed; a sealed line that
// was altered does not even open (reported as edited).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  closeSync,
  constants,
  fdatasync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  write as fsWrite,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { defaultEgress, type Egress } from '../egress/egress.js';
import { createGuard } from '../egress/guard.js';
import { GatewayError } from '../errors.js';
import { isSealed } from '../storage-seal.js';
import { unreadableStoreError, type StoreCipher } from '../store-cipher.js';

export type AuditValue = string | number | boolean | null;

export interface AuditEntryInput {
  /** Who: `operator`, `tenant:<id>`, `gateway`, `cli:<user>`. */
  readonly actor: string;
  /** What: `consent.set`, `recording.blocked`, `key.rotate`, `reveal`, `subject.erase`, ... */
  readonly action: string;
  readonly tenant: string;
  /** The thing acted on: an extension, a token, a record id. Never a raw number. */
  readonly subject?: string;
  readonly detail?: Readonly<Record<string, AuditValue>>;
}

export interface AuditEntry extends AuditEntryInput {
  readonly seq: number;
  readonly at: string;
  /** The MAC (or, before audit keys, the hash) of the entry before; 64 zeros for the first. */
  readonly prev: string;
  /** HMAC-SHA256 under the audit key. */
  readonly mac?: string;
  /** SHA-256 of an entry written before audit keys (an older version): verified only as a sealed prefix. */
  readonly hash?: string;
}

/** The chain's head as published off the box: what a verify compares the local log against. */
export interface AuditHead {
  readonly instance: string;
  readonly seq: number;
  readonly mac: string;
  /** When it was published. */
  readonly at: string;
}

const GENESIS = '0'.repeat(64);
const MAC_DOMAIN = 'callveil-audit/v2';

// A phone number is a run of 7+ digits, possibly with separators. Asterisk
// ids (`pbx-lab-1795418472.36`) and ISO times are allowed through.
const ASTERISK_ID = /\d{9,}\.\d+/g;
const ISO_TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g;
const NUMBER_LIKE = /\d(?:[\d\s().+/-]*\d){6,}/;

/**
 * For callers that must refuse (not redact) a value before it reaches any
 * output, such as a CLI argument: throws if it looks like a phone number.
 * The audit log itself checks entries with the egress.
 */
export function assertNoRawNumber(field: string, value: AuditValue | undefined): void {
  if (typeof value !== 'string') return;
  if (NUMBER_LIKE.test(value.replace(ASTERISK_ID, '').replace(ISO_TIME, ''))) {
    throw new GatewayError(
      'GW_PRIVACY_INVALID',
      `audit entry field ${field} looks like it holds a phone number; refused`,
    );
  }
}

type Body = Omit<AuditEntry, 'mac' | 'hash'>;

function canonical(e: Body): unknown[] {
  // Fixed key order, so the MAC does not depend on how the object was built.
  return [e.seq, e.at, e.actor, e.action, e.tenant, e.subject ?? null, e.detail ?? null, e.prev];
}

function entryMac(key: Buffer, e: Body): string {
  return createHmac('sha256', key)
    .update(JSON.stringify([MAC_DOMAIN, ...canonical(e)]))
    .digest('hex');
}

/** The unkeyed SHA-256 that entries had before audit keys. */
function legacyHash(e: Body): string {
  return createHash('sha256')
    .update(JSON.stringify(canonical(e)))
    .digest('hex');
}

function sameHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function parseLines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

type Decoded = { ok: true; text: string } | { ok: false; reason: AuditProblem; problem: string };

/** One line's entry text: opened under the cipher, or plaintext when there is none. */
function decodeLine(line: string, cipher: StoreCipher | undefined): Decoded {
  if (cipher === undefined)
    return isSealed(line)
      ? { ok: false, reason: 'storage-key', problem: 'is encrypted, and no storage key was given to open it' }
      : { ok: true, text: line };
  const r = cipher.open(line);
  if (r.ok) return { ok: true, text: r.text };
  const reason: AuditProblem =
    r.reason === 'auth-failed'
      ? 'edited'
      : r.reason === 'malformed'
        ? 'invalid'
        : r.reason === 'other-key'
          ? 'storage-key'
          : 'plaintext';
  return {
    ok: false,
    reason,
    problem:
      reason === 'edited'
        ? 'does not open under the storage key (entry edited)'
        : reason === 'invalid'
          ? 'not a sealed entry (entry edited or torn)'
          : r.problem,
  };
}

/** The entries of one line list; throws on a line that does not decode (callers read only what a walk verified). */
function entryOf(line: string, cipher: StoreCipher | undefined): AuditEntry {
  const d = decodeLine(line, cipher);
  if (!d.ok) throw new Error(`audit line ${d.reason}`);
  return JSON.parse(d.text) as AuditEntry;
}

// Retention: the log is the active file (`path`) plus sealed segments beside
// it, `<path>.<YYYYMMDD>-<first seq>`. Whole expired segments are deleted;
// before that, an `audit.expire` entry is chained (and MAC'd) recording the
// seq and MAC of the last entry deleted. The first retained entry links
// (`prev`) to that MAC, so verify starts there, and a head cut anywhere the
// log itself did not record is still caught.
export const AUDIT_EXPIRE_ACTION = 'audit.expire';
/** Chained once when a log written before audit keys is first opened with one: it seals the unkeyed prefix. */
export const AUDIT_UPGRADE_ACTION = 'audit.upgrade';
/** Written instead of an entry the egress refused: which fields were withheld, so nothing goes unaudited. */
export const WITHHELD = '[withheld]';

export interface AuditRetentionPolicy {
  /** Entries older than this are deleted, a whole segment at a time (a segment goes once its newest entry is this old). */
  readonly maxAgeMs: number;
  /** The active file is sealed into a segment once its first entry is this old. */
  readonly segmentMs: number;
}

export interface AuditExpiry {
  readonly entries: number;
  readonly segments: number;
  /** Seq of the last entry deleted (the new anchor), when something was deleted. */
  readonly throughSeq?: number;
}

export interface AuditLog {
  append(entry: AuditEntryInput): Promise<AuditEntry>;
  /** Seals the active file into a segment when due and deletes expired segments (see AuditRetentionPolicy). */
  expire(policy: AuditRetentionPolicy): Promise<AuditExpiry>;
  /** Several entries, one write and one fdatasync (off the event loop); all or none are acknowledged. */
  appendBatch(entries: readonly AuditEntryInput[]): Promise<AuditEntry[]>;
  /** The same, synchronously: for recovery at start, before anything else writes. */
  appendBatchSync(entries: readonly AuditEntryInput[]): AuditEntry[];
  /** Calls `fn` with the newest entries (the active file and the newest segment), oldest first. */
  scanRecent(fn: (entry: AuditEntry) => void): void;
  /** The last entry's seq and MAC; undefined while the log is empty. */
  head(): { readonly seq: number; readonly mac: string } | undefined;
  /** Called after each entry is durable. */
  onAppend(fn: (entry: AuditEntry) => void): void;
  close(): void;
}

/** Why a verify failed, for scripts; the problem says it in words. */
export type AuditProblem =
  | 'missing'
  | 'empty'
  | 'symlink'
  | 'unreadable'
  | 'invalid'
  | 'edited'
  | 'removed'
  | 'unkeyed'
  | 'truncated'
  | 'head-mismatch'
  /** Sealed under another storage key, or sealed and no storage key given. */
  | 'storage-key'
  /** A plaintext line in a log read with a storage key: written before encryption at rest (migrate it). */
  | 'plaintext';

/**
 * `expired`: entries before the first retained one, deleted under retention
 * and accounted for by an audit.expire entry. `legacy`: unkeyed entries from
 * before audit keys, sealed by an audit.upgrade entry. `head`: the published
 * head the log was compared with.
 */
export type AuditVerdict =
  | {
      ok: true;
      entries: number;
      expired?: number;
      legacy?: number;
      head?: { seq: number; matched: 'entry' | 'older-than-retained' };
    }
  | { ok: false; entries: number; line: number; problem: string; reason: AuditProblem; file?: string };

export interface AuditVerifyOptions {
  readonly key: Buffer;
  /** The audit store's cipher (storage key): every line must be sealed under it. Without it, lines must be plaintext. */
  readonly cipher?: StoreCipher | undefined;
  /** The last head published off the box: the log must reach it, and hold that MAC at that seq. */
  readonly head?: Pick<AuditHead, 'seq' | 'mac'> | undefined;
}

export interface AuditLogOptions {
  /** The audit key (keys file `auditKey`): at least 32 bytes. */
  readonly key: Buffer;
  /**
   * Seals every entry (encryption at rest, storeCipherOf(loaded, 'audit', path)).
   * The gateway and the CLI always give one; without it the log is plaintext
   * (tools reading an older log, and tests of the chain itself).
   */
  readonly cipher?: StoreCipher | undefined;
  readonly now?: () => Date;
  /** Where entries are checked before they are written; default the process's egress. */
  readonly egress?: Egress;
}

interface SegmentFile {
  readonly path: string;
  readonly firstSeq: number;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Sealed segments of the log at `path`, oldest first. */
function segmentsOf(path: string): SegmentFile[] {
  const re = new RegExp(`^${escapeRegExp(basename(path))}\\.\\d{8}-(\\d{12})$`);
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return [];
  }
  return names
    .flatMap((n) => {
      const m = re.exec(n);
      return m === null ? [] : [{ path: join(dirname(path), n), firstSeq: Number(m[1]) }];
    })
    .sort((a, b) => a.firstSeq - b.firstSeq);
}

/** Every file of the log at `path` that exists or may: its sealed segments (oldest first), then the active file. */
export function auditLogFiles(path: string): string[] {
  return [...segmentsOf(path).map((s) => s.path), path];
}

function segmentName(path: string, first: AuditEntry): string {
  const day = first.at.slice(0, 10).replace(/-/g, '');
  return `${path}.${/^\d{8}$/.test(day) ? day : '00000000'}-${String(first.seq).padStart(12, '0')}`;
}

type Read = { text: string } | { missing: true } | { problem: 'symlink' | 'unreadable'; code: string };

/** Reads a log file, never through a symlink planted in its place. */
function readLogFile(path: string): Read {
  try {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return { text: readFileSync(fd, 'utf8') };
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT') return { missing: true };
    if (code === 'ELOOP') return { problem: 'symlink', code };
    return { problem: 'unreadable', code };
  }
}

interface ChainState {
  readonly verdict: AuditVerdict;
  readonly last?: { seq: number; mac: string; keyed: boolean };
  /** Nothing at all on disk: neither the active file nor a segment. */
  readonly absent?: boolean;
}

/** Walks segments then the active file: sequence, links, MACs, the upgrade seal and the retention anchor. */
function walkChain(path: string, opts: AuditVerifyOptions): ChainState {
  const segments = segmentsOf(path).map((s) => s.path);
  const files = [...segments, path];
  let first: AuditEntry | undefined;
  let firstAt: { file: string; line: number } | undefined;
  let prev = GENESIS;
  let expectSeq = 1;
  let count = 0;
  let legacy = 0;
  let keyed = false;
  let lastLegacy: { seq: number; hash: string } | undefined;
  let headMac: string | undefined;
  let sawFile = false;
  // seq -> MAC of retained entries named by audit.expire anchors.
  const macs = new Map<number, string>();
  const anchors: Array<{ throughSeq: number; lastHash: string; file: string; line: number }> = [];
  const fail = (reason: AuditProblem, problem: string, file: string, line: number): ChainState => ({
    verdict: { ok: false, entries: count, line, problem, reason, ...(file === path ? {} : { file }) },
  });
  for (const file of files) {
    const read = readLogFile(file);
    if ('missing' in read) continue;
    if ('problem' in read)
      return fail(
        read.problem,
        read.problem === 'symlink'
          ? 'is a symbolic link, not the log file: refused (someone replaced it)'
          : `cannot be read (${read.code})`,
        file,
        0,
      );
    sawFile = true;
    const lines = parseLines(read.text);
    for (let i = 0; i < lines.length; i++) {
      const broken = (reason: AuditProblem, problem: string) => fail(reason, problem, file, i + 1);
      const d = decodeLine(lines[i]!, opts.cipher);
      if (!d.ok) return broken(d.reason, d.problem);
      let e: AuditEntry;
      try {
        e = JSON.parse(d.text) as AuditEntry;
      } catch {
        return broken('invalid', 'not valid JSON (entry edited or torn)');
      }
      if (typeof e !== 'object' || e === null || !Number.isInteger(e.seq))
        return broken('invalid', 'not an audit entry');
      if (first === undefined) {
        first = e;
        firstAt = { file, line: i + 1 };
        // A log that starts past seq 1 starts at a retention anchor, checked below.
        if (e.seq > 1) {
          expectSeq = e.seq;
          prev = e.prev;
        }
      }
      if (e.seq !== expectSeq)
        return broken(
          'removed',
          `sequence ${e.seq} where ${expectSeq} was expected (entry removed or reordered, or the chain renumbered)`,
        );
      if (e.prev !== prev)
        return broken('removed', 'does not link to the entry before it (entry removed, reordered or edited)');
      const { mac, hash, ...body } = e;
      let link: string;
      if (typeof mac === 'string') {
        if (!sameHex(entryMac(opts.key, body), mac))
          return broken(
            'edited',
            'its MAC does not match its content (entry edited, or verified with another audit key)',
          );
        if (!keyed && lastLegacy !== undefined) {
          // The first keyed entry after unkeyed ones must be the seal naming exactly them.
          const d = e.detail;
          if (e.action !== AUDIT_UPGRADE_ACTION || d?.throughSeq !== lastLegacy.seq || d.lastHash !== lastLegacy.hash)
            return broken('unkeyed', `unkeyed entries before it are not sealed by an ${AUDIT_UPGRADE_ACTION} entry`);
        }
        keyed = true;
        link = mac;
      } else if (typeof hash === 'string') {
        // Unkeyed: only as the prefix an older version wrote, before any keyed entry.
        if (keyed) return broken('unkeyed', 'an unkeyed entry after keyed ones (entry forged without the audit key)');
        if (legacyHash(body) !== hash) return broken('edited', 'content does not match its hash (entry edited)');
        legacy++;
        lastLegacy = { seq: e.seq, hash };
        link = hash;
      } else return broken('invalid', 'has no MAC');
      if (opts.head !== undefined && e.seq === opts.head.seq) headMac = link;
      macs.set(e.seq, link);
      if (
        e.action === AUDIT_EXPIRE_ACTION &&
        e.actor === 'gateway' &&
        typeof e.detail?.throughSeq === 'number' &&
        typeof e.detail.lastHash === 'string'
      )
        anchors.push({ throughSeq: e.detail.throughSeq, lastHash: e.detail.lastHash, file, line: i + 1 });
      prev = link;
      expectSeq++;
      count++;
    }
  }
  if (!sawFile) return { ...fail('missing', 'does not exist (never written, or deleted)', path, 0), absent: true };
  if (first === undefined)
    return { ...fail('empty', 'holds no entries (emptied, or cut before its first entry)', path, 0) };
  const last = { seq: expectSeq - 1, mac: prev, keyed };
  if (!keyed)
    return {
      verdict: {
        ok: false,
        entries: count,
        line: 0,
        problem: `all ${count} entries are unkeyed (written before audit keys): start the gateway once with an audit key to seal them`,
        reason: 'unkeyed',
      },
      last,
    };
  const expired = first.seq - 1;
  // Every recorded anchor inside the retained range must match the entry it names.
  for (const a of anchors) {
    const at = a.throughSeq === expired ? first.prev : macs.get(a.throughSeq);
    if (a.throughSeq >= expired && at !== a.lastHash)
      return fail(
        'removed',
        `names entry ${a.throughSeq} as the last one expired, and that entry's MAC differs (entries removed or edited)`,
        a.file,
        a.line,
      );
  }
  if (expired > 0 && !anchors.some((a) => a.throughSeq >= expired))
    return fail(
      'removed',
      `starts at sequence ${first.seq}, and no ${AUDIT_EXPIRE_ACTION} entry accounts for the entries before it (entries removed)`,
      firstAt!.file,
      firstAt!.line,
    );
  let head: { seq: number; matched: 'entry' | 'older-than-retained' } | undefined;
  if (opts.head !== undefined) {
    const h = opts.head;
    if (h.seq > last.seq)
      return fail(
        'truncated',
        `ends at sequence ${last.seq}, and the published head is at ${h.seq} (entries cut from the end)`,
        path,
        0,
      );
    if (h.seq <= expired) head = { seq: h.seq, matched: 'older-than-retained' };
    else if (headMac === undefined || !sameHex(headMac, h.mac))
      return fail(
        'head-mismatch',
        `entry ${h.seq} differs from the published head (the log was rewritten from there on)`,
        path,
        0,
      );
    else head = { seq: h.seq, matched: 'entry' };
  }
  return {
    verdict: {
      ok: true,
      entries: count,
      ...(expired > 0 ? { expired } : {}),
      ...(legacy > 0 ? { legacy } : {}),
      ...(head === undefined ? {} : { head }),
    },
    last,
  };
}

/** Checks the whole chain (sealed segments, then the active file) under the audit key, and against a published head. */
export function verifyAuditLog(path: string, opts: AuditVerifyOptions): AuditVerdict {
  return walkChain(path, opts).verdict;
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function firstAndLast(
  file: string,
  cipher: StoreCipher | undefined,
): { first: AuditEntry; last: AuditEntry } | undefined {
  const read = readLogFile(file);
  const lines = parseLines('text' in read ? read.text : '');
  if (lines.length === 0) return undefined;
  return { first: entryOf(lines[0]!, cipher), last: entryOf(lines[lines.length - 1]!, cipher) };
}

const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

/** Refuses a log file that is not a plain file of ours (a symlink or a device planted in its place). */
function openForAppend(path: string): number {
  try {
    return openSync(path, APPEND_FLAGS, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new GatewayError(
      'GW_STORAGE',
      code === 'ELOOP'
        ? `audit log ${path} is a symbolic link: refused (nothing the gateway writes is reached through a link) — fix: remove it and find out who put it there`
        : `audit log ${path}: cannot open (${code})`,
    );
  }
}

/** The fields of an entry the egress would refuse: found with the same guard, so the block is counted once. */
function withheldFields(input: AuditEntryInput, egress: Egress): string[] {
  const guard = createGuard();
  const hit = (s: string) => guard.check(s, { own: undefined, recent: egress.recent }) !== undefined;
  const out: string[] = [];
  if (hit(input.actor)) out.push('actor');
  if (hit(input.tenant)) out.push('tenant');
  if (input.subject !== undefined && hit(input.subject)) out.push('subject');
  for (const [k, v] of Object.entries(input.detail ?? {})) if (typeof v === 'string' && hit(v)) out.push(`detail.${k}`);
  return out;
}

/** The entry with the refused fields replaced, saying which they were. */
function redacted(input: AuditEntryInput, fields: readonly string[]): AuditEntryInput {
  const all = fields.length === 0; // the guard found the whole entry but no one field: withhold every free text
  const w = (f: string, v: string) => (all || fields.includes(f) ? WITHHELD : v);
  const detail: Record<string, AuditValue> = {};
  for (const [k, v] of Object.entries(input.detail ?? {})) detail[k] = typeof v === 'string' ? w(`detail.${k}`, v) : v;
  detail.withheld = all ? '*' : fields.join(',');
  return {
    actor: w('actor', input.actor),
    action: input.action,
    tenant: w('tenant', input.tenant),
    ...(input.subject === undefined ? {} : { subject: w('subject', input.subject) }),
    detail,
  };
}

/**
 * Opens (or creates, at the first entry) the log. Refuses to append to a
 * broken chain: a gap found at start is an incident to look at, not something
 * to paper over. A log written before audit keys is sealed by an
 * audit.upgrade entry and continued under the key.
 */
export function openAuditLog(path: string, opts: AuditLogOptions): AuditLog {
  const key = opts.key;
  if (!Buffer.isBuffer(key) || key.length < 32)
    throw new GatewayError('GW_AUDIT_KEY', `audit log ${path}: no audit key (auditKey in the keys file)`);
  const now = opts.now ?? (() => new Date());
  const egress = opts.egress ?? defaultEgress();
  const cipher = opts.cipher;
  const state = walkChain(path, { key, cipher });
  const verdict = state.verdict;
  if (!verdict.ok && (verdict.reason === 'storage-key' || verdict.reason === 'plaintext'))
    throw cipher === undefined
      ? new GatewayError(
          'GW_STORAGE_KEY',
          `audit log ${verdict.file ?? path} line ${verdict.line}: ${verdict.problem} — fix: give the storage key (keys file storageKey, or CALLVEIL_STORAGE_KEY)`,
        )
      : unreadableStoreError('audit', verdict.file ?? path, ` line ${verdict.line}`, {
          ok: false,
          reason: verdict.reason === 'plaintext' ? 'plaintext' : 'other-key',
          problem: verdict.problem,
        });
  // Nothing on disk, or an empty file (a crash right after creating it): a new chain.
  const fresh = !verdict.ok && (verdict.reason === 'missing' || verdict.reason === 'empty');
  const unsealed = !verdict.ok && verdict.reason === 'unkeyed' && state.last !== undefined && !state.last.keyed;
  if (!verdict.ok && !fresh && !unsealed)
    throw new GatewayError(
      'GW_CONFIG_INVALID',
      `audit log ${verdict.file ?? path} is broken at line ${verdict.line}: ${verdict.problem} — fix: keep it for the investigation (move it aside) and start a new log`,
    );
  let seq = state.last?.seq ?? 0;
  let prev = state.last?.mac ?? GENESIS;
  let fd: number | undefined;
  // Entries in the active file, and the time of its first one (for sealing).
  let activeFirst: AuditEntry | undefined = firstAndLast(path, cipher)?.first;
  let chain: Promise<unknown> = Promise.resolve();
  const listeners: Array<(e: AuditEntry) => void> = [];

  /** The entries for `inputs`, chained after the current head (nothing written yet). */
  const build = (inputs: readonly AuditEntryInput[]): AuditEntry[] => {
    let p = prev;
    return inputs.map((input, i) => {
      const body: Body = {
        seq: seq + 1 + i,
        at: now().toISOString(),
        actor: input.actor,
        action: input.action,
        tenant: input.tenant,
        ...(input.subject === undefined ? {} : { subject: input.subject }),
        ...(input.detail === undefined ? {} : { detail: input.detail }),
        prev: p,
      };
      const entry: AuditEntry = { ...body, mac: entryMac(key, body) };
      p = entry.mac!;
      return entry;
    });
  };
  const written = (entries: readonly AuditEntry[]): void => {
    const lastEntry = entries[entries.length - 1]!;
    seq = lastEntry.seq;
    prev = lastEntry.mac!;
    activeFirst ??= entries[0];
    for (const e of entries) for (const fn of listeners) fn(e);
  };
  const bytesOf = (entries: readonly AuditEntry[]) =>
    Buffer.from(
      entries.map((e) => (cipher === undefined ? JSON.stringify(e) : cipher.seal(JSON.stringify(e))) + '\n').join(''),
    );

  /** Synchronous: at open and in recovery, before anything else runs. One write, one fdatasync. */
  const writeSyncBatch = (inputs: readonly AuditEntryInput[]): AuditEntry[] => {
    if (inputs.length === 0) return [];
    const entries = build(inputs);
    const data = bytesOf(entries);
    fd ??= openForAppend(path);
    for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
    // An audit entry that a crash can lose is not an audit entry.
    fdatasyncSync(fd);
    written(entries);
    return entries;
  };

  /** Off the event loop: one write and one fdatasync for the whole batch. */
  const writeBatch = (inputs: readonly AuditEntryInput[]): Promise<AuditEntry[]> => {
    if (inputs.length === 0) return Promise.resolve([]);
    const entries = build(inputs);
    const data = bytesOf(entries);
    const f = (fd ??= openForAppend(path));
    return new Promise((resolve, reject) => {
      let off = 0;
      const step = () =>
        fsWrite(f, data, off, data.length - off, null, (err, n) => {
          if (err) return reject(err);
          off += n;
          if (off < data.length) return step();
          fdatasync(f, (e) => {
            if (e) return reject(e);
            written(entries);
            resolve(entries);
          });
        });
      step();
    });
  };

  const checked = (input: AuditEntryInput): AuditEntryInput => {
    const content = {
      actor: input.actor,
      action: input.action,
      tenant: input.tenant,
      ...(input.subject === undefined ? {} : { subject: input.subject }),
      ...(input.detail === undefined ? {} : { detail: input.detail }),
    };
    if (egress.pass('audit', JSON.stringify(content), { object: content, tenant: input.tenant })) return input;
    // Never lost: the entry is written with the refused fields withheld, saying which.
    return redacted(input, withheldFields(input, egress));
  };

  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => undefined);
    return run;
  };

  if (unsealed) {
    // An older version's unkeyed chain: sealed once, and every entry after it is keyed.
    const legacyCount = state.last!.seq;
    writeSyncBatch([
      {
        actor: 'gateway',
        action: AUDIT_UPGRADE_ACTION,
        tenant: '*',
        detail: { throughSeq: state.last!.seq, lastHash: state.last!.mac, unkeyedEntries: legacyCount },
      },
    ]);
  }

  const seal = (): void => {
    if (activeFirst === undefined) return;
    if (fd !== undefined) {
      fdatasyncSync(fd);
      closeSync(fd);
      fd = undefined;
    }
    renameSync(path, segmentName(path, activeFirst));
    syncDir(dirname(path));
    activeFirst = undefined;
  };

  const expire = async (policy: AuditRetentionPolicy): Promise<AuditExpiry> => {
    const nowMs = now().getTime();
    if (activeFirst !== undefined && Date.parse(activeFirst.at) <= nowMs - policy.segmentMs) seal();
    // Only a prefix of whole segments goes: the retained log stays one unbroken chain.
    const doomed: string[] = [];
    let firstSeq: number | undefined;
    let anchor: AuditEntry | undefined;
    for (const s of segmentsOf(path)) {
      const fl = firstAndLast(s.path, cipher);
      if (fl !== undefined) {
        if (Date.parse(fl.last.at) > nowMs - policy.maxAgeMs) break;
        firstSeq ??= fl.first.seq;
        anchor = fl.last;
      }
      doomed.push(s.path);
    }
    if (doomed.length === 0) return { entries: 0, segments: 0 };
    const entries = anchor === undefined ? 0 : anchor.seq - firstSeq! + 1;
    // Chained (and MAC'd) before anything is deleted: a crash in between leaves a log that
    // still verifies (the anchor names an entry still present, or the first one gone).
    if (anchor !== undefined)
      await writeBatch([
        {
          actor: 'gateway',
          action: AUDIT_EXPIRE_ACTION,
          tenant: '*',
          detail: {
            entries,
            segments: doomed.length,
            throughSeq: anchor.seq,
            lastHash: anchor.mac ?? anchor.hash ?? '',
          },
        },
      ]);
    for (const d of doomed) unlinkSync(d);
    syncDir(dirname(path));
    return anchor === undefined
      ? { entries: 0, segments: doomed.length }
      : { entries, segments: doomed.length, throughSeq: anchor.seq };
  };

  return {
    append(input) {
      let entry: AuditEntryInput;
      try {
        entry = checked(input);
      } catch (err) {
        return Promise.reject(err as Error);
      }
      return serial(async () => (await writeBatch([entry]))[0]!);
    },
    appendBatch(inputs) {
      let entries: AuditEntryInput[];
      try {
        entries = inputs.map(checked);
      } catch (err) {
        return Promise.reject(err as Error);
      }
      return serial(() => writeBatch(entries));
    },
    appendBatchSync: (inputs) => writeSyncBatch(inputs.map(checked)),
    scanRecent(fn) {
      // The active file and the newest segment: where entries of a change set cut short by a crash are.
      const segs = segmentsOf(path);
      for (const file of [...segs.slice(-1).map((x) => x.path), path]) {
        const r = readLogFile(file);
        if (!('text' in r)) continue;
        for (const line of parseLines(r.text)) {
          try {
            fn(entryOf(line, cipher));
          } catch {
            // verified at open: not reached
          }
        }
      }
    },
    expire: (policy) => serial(() => expire(policy)),
    head: () => (seq === 0 ? undefined : { seq, mac: prev }),
    onAppend(fn) {
      listeners.push(fn);
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
