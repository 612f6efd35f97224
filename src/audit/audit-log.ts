// Append-only, tamper-evident audit trail: JSONL, each entry carrying the hash
// of the one before it, so an edited, removed or reordered entry breaks the
// chain. Entries say who did what to which tenant, when; never a raw number.
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
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

export interface AuditLog {
  append(entry: AuditEntryInput): Promise<AuditEntry>;
  close(): void;
}

export type AuditVerdict = { ok: true; entries: number } | { ok: false; entries: number; line: number; problem: string };

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
    throw new GatewayError('GW_PRIVACY_INVALID', `audit entry field ${field} looks like it holds a phone number; refused`);
  }
}

function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  // Fixed key order, so the hash does not depend on how the object was built.
  const canonical = JSON.stringify([e.seq, e.at, e.actor, e.action, e.tenant, e.subject ?? null, e.detail ?? null, e.prev]);
  return createHash('sha256').update(canonical).digest('hex');
}

function parseLines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

/** Checks the whole chain: sequence, links and hashes. */
export function verifyAuditLog(path: string): AuditVerdict {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, entries: 0 };
    throw new GatewayError('GW_CONFIG_UNREADABLE', `cannot read audit log ${path}`);
  }
  let prev = GENESIS;
  const lines = parseLines(text);
  for (let i = 0; i < lines.length; i++) {
    let e: AuditEntry;
    try {
      e = JSON.parse(lines[i]!) as AuditEntry;
    } catch {
      return { ok: false, entries: i, line: i + 1, problem: 'not valid JSON' };
    }
    if (e.seq !== i + 1) return { ok: false, entries: i, line: i + 1, problem: `sequence ${e.seq} where ${i + 1} was expected (entry removed or reordered)` };
    if (e.prev !== prev) return { ok: false, entries: i, line: i + 1, problem: 'does not link to the entry before it (entry removed, reordered or edited)' };
    const { hash, ...rest } = e;
    if (entryHash(rest) !== hash) return { ok: false, entries: i, line: i + 1, problem: 'content does not match its hash (entry edited)' };
    prev = hash;
  }
  return { ok: true, entries: lines.length };
}

/**
 * Opens (or creates) the log. Refuses to append to a broken chain: a gap
 * found at start is an incident to look at, not something to paper over.
 */
export function openAuditLog(path: string, now: () => Date = () => new Date()): AuditLog {
  const verdict = verifyAuditLog(path);
  if (!verdict.ok) throw new GatewayError('GW_CONFIG_INVALID', `audit log ${path} is broken at line ${verdict.line}: ${verdict.problem}`);
  let seq = verdict.entries;
  let prev = GENESIS;
  if (seq > 0) {
    const lines = parseLines(readFileSync(path, 'utf8'));
    prev = (JSON.parse(lines[lines.length - 1]!) as AuditEntry).hash;
  }
  const fd = openSync(path, 'a', 0o600);
  let chain: Promise<unknown> = Promise.resolve();

  return {
    append(input) {
      try {
        assertNoRawNumber('subject', input.subject);
        for (const [k, v] of Object.entries(input.detail ?? {})) assertNoRawNumber(`detail.${k}`, v);
      } catch (err) {
        return Promise.reject(err);
      }
      const run = chain.then(() => {
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
        return entry;
      });
      chain = run.catch(() => undefined);
      return run;
    },
    close() {
      closeSync(fd);
    },
  };
}
