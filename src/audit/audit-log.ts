// Append-only, tamper-evident audit trail: JSONL, each entry carrying the hash
// of the one before it, so an edited, removed or reordered entry breaks the
// chain. Entries say who did what to which tenant, when; never a raw number.
import { createHash } from 'node:crypto';
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GatewayError } from '../errors.js';

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
  readonly prev: string;
  readonly hash: string;
}

const GENESIS = '0'.repeat(64);
// A phone number is a run of 7+ digits, possibly with separators. Asterisk
// ids (`pbx-lab-1795418472.36`) and ISO times are allowed through.
const ASTERISK_ID = /\d{9,}\.\d+/g;
const ISO_TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g;
const NUMBER_LIKE = /\d(?:[\d\s().+/-]*\d){6,}/;

/** Throws if a value looks like it holds a phone number; the message names the field only. */
export function assertNoRawNumber(field: string, value: AuditValue | undefined): void {
  if (typeof value !== 'string') return;
  if (NUMBER_LIKE.test(value.replace(ASTERISK_ID, '').replace(ISO_TIME, ''))) {
    throw new GatewayError(
      'GW_PRIVACY_INVALID',
      `audit entry field ${field} looks like it holds a phone number; refused`,
    );
  }
}

function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  // Fixed key order, so the hash does not depend on how the object was built.
  const canonical = JSON.stringify([
    e.seq,
    e.at,
    e.actor,
    e.action,
    e.tenant,
    e.subject ?? null,
    e.detail ?? null,
    e.prev,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

function parseLines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

// Retention: the log is the active file (`path`) plus sealed segments beside
// it, `<path>.<YYYYMMDD>-<first seq>`. Whole expired segments are deleted;
// before that, an `audit.expire` entry is chained recording the seq and hash
// of the last entry deleted. The first retained entry links (`prev`) to that
// hash, so verify starts there, and a head cut anywhere the log itself did not
// record is still caught.
export const AUDIT_EXPIRE_ACTION = 'audit.expire';

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
  close(): void;
}

/** `expired`: entries before the first retained one, deleted under retention and accounted for by an audit.expire entry. */
export type AuditVerdict =
  | { ok: true; entries: number; expired?: number }
  | { ok: false; entries: number; line: number; problem: string; file?: string };

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

function segmentName(path: string, first: AuditEntry): string {
  const day = first.at.slice(0, 10).replace(/-/g, '');
  return `${path}.${/^\d{8}$/.test(day) ? day : '00000000'}-${String(first.seq).padStart(12, '0')}`;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new GatewayError('GW_CONFIG_UNREADABLE', `cannot read audit log ${path}`);
  }
}

interface ChainState {
  readonly verdict: AuditVerdict;
  readonly last?: { seq: number; hash: string };
}

/** Walks segments then the active file: sequence, links, hashes, and the retention anchor. */
function walkChain(path: string): ChainState {
  const files = [...segmentsOf(path).map((s) => s.path), path];
  let first: AuditEntry | undefined;
  let firstAt: { file: string; line: number } | undefined;
  let prev = GENESIS;
  let expectSeq = 1;
  let count = 0;
  // seq -> hash of retained entries, to check the anchors that audit.expire entries recorded.
  const hashes = new Map<number, string>();
  const anchors: Array<{ throughSeq: number; lastHash: string; file: string; line: number }> = [];
  for (const file of files) {
    const text = readText(file);
    if (text === undefined) continue;
    const lines = parseLines(text);
    for (let i = 0; i < lines.length; i++) {
      const broken = (problem: string): ChainState => ({
        verdict: { ok: false, entries: count, line: i + 1, problem, ...(file === path ? {} : { file }) },
      });
      let e: AuditEntry;
      try {
        e = JSON.parse(lines[i]!) as AuditEntry;
      } catch {
        return broken('not valid JSON');
      }
      if (first === undefined) {
        first = e;
        firstAt = { file, line: i + 1 };
        // A log that starts past seq 1 starts at a retention anchor, checked below.
        if (Number.isInteger(e.seq) && e.seq > 1) {
          expectSeq = e.seq;
          prev = e.prev;
        }
      }
      if (e.seq !== expectSeq)
        return broken(`sequence ${e.seq} where ${expectSeq} was expected (entry removed or reordered)`);
      if (e.prev !== prev) return broken('does not link to the entry before it (entry removed, reordered or edited)');
      const { hash, ...rest } = e;
      if (entryHash(rest) !== hash) return broken('content does not match its hash (entry edited)');
      hashes.set(e.seq, hash);
      if (
        e.action === AUDIT_EXPIRE_ACTION &&
        e.actor === 'gateway' &&
        typeof e.detail?.throughSeq === 'number' &&
        typeof e.detail.lastHash === 'string'
      ) {
        anchors.push({ throughSeq: e.detail.throughSeq, lastHash: e.detail.lastHash, file, line: i + 1 });
      }
      prev = hash;
      expectSeq++;
      count++;
    }
  }
  if (first === undefined) return { verdict: { ok: true, entries: 0 } };
  const last = { seq: expectSeq - 1, hash: prev };
  const expired = first.seq - 1;
  // Every recorded anchor inside the retained range must match the entry it names.
  for (const a of anchors) {
    const at = a.throughSeq === expired ? first.prev : hashes.get(a.throughSeq);
    if (a.throughSeq >= expired && at !== a.lastHash) {
      return {
        verdict: {
          ok: false,
          entries: count,
          line: a.line,
          problem: `names entry ${a.throughSeq} as the last one expired, and that entry's hash differs (entries removed or edited)`,
          ...(a.file === path ? {} : { file: a.file }),
        },
      };
    }
  }
  if (expired > 0 && !anchors.some((a) => a.throughSeq >= expired)) {
    return {
      verdict: {
        ok: false,
        entries: 0,
        line: firstAt!.line,
        problem: `starts at sequence ${first.seq}, and no ${AUDIT_EXPIRE_ACTION} entry accounts for the entries before it (entries removed)`,
        ...(firstAt!.file === path ? {} : { file: firstAt!.file }),
      },
    };
  }
  return { verdict: expired > 0 ? { ok: true, entries: count, expired } : { ok: true, entries: count }, last };
}

/** Checks the whole chain (sealed segments, then the active file): sequence, links, hashes and retention anchors. */
export function verifyAuditLog(path: string): AuditVerdict {
  return walkChain(path).verdict;
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function firstAndLast(file: string): { first: AuditEntry; last: AuditEntry } | undefined {
  const lines = parseLines(readText(file) ?? '');
  if (lines.length === 0) return undefined;
  return { first: JSON.parse(lines[0]!) as AuditEntry, last: JSON.parse(lines[lines.length - 1]!) as AuditEntry };
}

/**
 * Opens (or creates) the log. Refuses to append to a broken chain: a gap
 * found at start is an incident to look at, not something to paper over.
 */
export function openAuditLog(path: string, now: () => Date = () => new Date()): AuditLog {
  const state = walkChain(path);
  const verdict = state.verdict;
  if (!verdict.ok)
    throw new GatewayError(
      'GW_CONFIG_INVALID',
      `audit log ${verdict.file ?? path} is broken at line ${verdict.line}: ${verdict.problem}`,
    );
  let seq = state.last?.seq ?? 0;
  let prev = state.last?.hash ?? GENESIS;
  let fd = openSync(path, 'a', 0o600);
  // Entries in the active file, and the time of its first one (for sealing).
  let activeFirst: AuditEntry | undefined = firstAndLast(path)?.first;
  let chain: Promise<unknown> = Promise.resolve();

  const write = (input: AuditEntryInput): AuditEntry => {
    const body = {
      seq: seq + 1,
      at: now().toISOString(),
      actor: input.actor,
      action: input.action,
      tenant: input.tenant,
      ...(input.subject === undefined ? {} : { subject: input.subject }),
      ...(input.detail === undefined ? {} : { detail: input.detail }),
      prev,
    };
    const entry: AuditEntry = { ...body, hash: entryHash(body) };
    writeSync(fd, JSON.stringify(entry) + '\n');
    // An audit entry that a crash can lose is not an audit entry.
    fdatasyncSync(fd);
    seq = entry.seq;
    prev = entry.hash;
    activeFirst ??= entry;
    return entry;
  };

  const serial = <T>(fn: () => T): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => undefined);
    return run;
  };

  const seal = (): void => {
    if (activeFirst === undefined) return;
    fdatasyncSync(fd);
    closeSync(fd);
    renameSync(path, segmentName(path, activeFirst));
    fd = openSync(path, 'a', 0o600);
    syncDir(dirname(path));
    activeFirst = undefined;
  };

  const expire = (policy: AuditRetentionPolicy): AuditExpiry => {
    const nowMs = now().getTime();
    if (activeFirst !== undefined && Date.parse(activeFirst.at) <= nowMs - policy.segmentMs) seal();
    // Only a prefix of whole segments goes: the retained log stays one unbroken chain.
    const doomed: string[] = [];
    let firstSeq: number | undefined;
    let anchor: AuditEntry | undefined;
    for (const s of segmentsOf(path)) {
      const fl = firstAndLast(s.path);
      if (fl !== undefined) {
        if (Date.parse(fl.last.at) > nowMs - policy.maxAgeMs) break;
        firstSeq ??= fl.first.seq;
        anchor = fl.last;
      }
      doomed.push(s.path);
    }
    if (doomed.length === 0) return { entries: 0, segments: 0 };
    const entries = anchor === undefined ? 0 : anchor.seq - firstSeq! + 1;
    // Chained before anything is deleted: a crash in between leaves a log that
    // still verifies (the anchor names an entry still present, or the first one gone).
    if (anchor !== undefined)
      write({
        actor: 'gateway',
        action: AUDIT_EXPIRE_ACTION,
        tenant: '*',
        detail: { entries, segments: doomed.length, throughSeq: anchor.seq, lastHash: anchor.hash },
      });
    for (const d of doomed) unlinkSync(d);
    syncDir(dirname(path));
    return anchor === undefined
      ? { entries: 0, segments: doomed.length }
      : { entries, segments: doomed.length, throughSeq: anchor.seq };
  };

  return {
    append(input) {
      try {
        assertNoRawNumber('subject', input.subject);
        for (const [k, v] of Object.entries(input.detail ?? {})) assertNoRawNumber(`detail.${k}`, v);
      } catch (err) {
        return Promise.reject(err);
      }
      return serial(() => write(input));
    },
    expire: (policy) => serial(() => expire(policy)),
    close() {
      closeSync(fd);
    },
  };
}
