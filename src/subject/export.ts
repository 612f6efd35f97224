// Subject access and portability: every record of one subscriber in the
// tenant's sanitized topic, found by the subscriber's tokens (never by the
// number, which the records do not hold), in the published record schema.
import { CdrRecord, type Party } from '../privacy/cdr-record.js';
import type { SubjectTokens } from './tokens.js';

/**
 * The fields that carry a subscriber: the parties. `token` (method token, and
 * the fallback of fpe/keep for kinds those cannot encode) and `fpe` (method
 * fpe) identify a number; `prefix`, `country` and `numberType` are shared by
 * many subscribers and `callerName` is a name, so they never match.
 */
const PARTY_FIELDS = ['caller', 'callee', 'origin', 'answeredBy'] as const;

/** The subject's identifiers per key id, and the raw bytes worth looking for before parsing a record. */
export interface SubjectMatcher {
  readonly tenant: string;
  /** Key ids the subject's tokens were computed under. */
  readonly keyIds: ReadonlySet<string>;
  /** Cheap prefilter: could this serialised record hold one of the subject's identifiers? */
  mayMatch(value: Buffer): boolean;
  /** Was this serialised record made under one of those keys? If not, its tokens cannot be compared. */
  underKnownKey(value: Buffer): boolean;
  /** Does this record, made under `record.keyId`, name the subject in a party field? */
  matches(record: CdrRecord): boolean;
}

export function subjectMatcher(subject: SubjectTokens): SubjectMatcher {
  // A key can have several entries (a short number read as an extension and as a subscriber's number).
  const byKey = new Map<string, Set<string>>();
  for (const k of subject.keys) {
    const set = byKey.get(k.keyId) ?? new Set<string>();
    for (const v of [k.token, ...k.fpe]) set.add(v);
    byKey.set(k.keyId, set);
  }
  // Tokens are base64url and fpe values "+digits_digits": neither needs JSON escaping, so they appear verbatim.
  const needles = [...new Set(subject.keys.flatMap((k) => [k.token, ...k.fpe]))].map((s) => Buffer.from(`"${s}"`));
  const keyMarks = [...byKey.keys()].map((kid) => Buffer.from(`"keyId":${JSON.stringify(kid)}`));
  const named = (party: Party | undefined, ids: ReadonlySet<string>) =>
    party !== undefined &&
    ((party.token !== null && ids.has(party.token)) || (party.fpe !== undefined && ids.has(party.fpe)));
  return {
    tenant: subject.tenant,
    keyIds: new Set(byKey.keys()),
    mayMatch: (value) => needles.some((n) => value.includes(n)),
    underKnownKey: (value) => keyMarks.some((m) => value.includes(m)),
    matches(record) {
      const ids = byKey.get(record.keyId);
      return record.tenant === subject.tenant && ids !== undefined && PARTY_FIELDS.some((f) => named(record[f], ids));
    },
  };
}

/** The throw-away consumer group a Kafka read used: deleted after the read, or why not (the broker's code). */
export interface ReadGroupOutcome {
  readonly id: string;
  readonly deleted: boolean;
  readonly kafkaCode?: string;
}

/** Where records come from: one pass over the tenant's topic (see sink/kafka-reader.ts). */
export type RecordSource = (
  onValue: (value: Buffer | null) => void,
) => Promise<{ exists: boolean; read: number; group?: ReadGroupOutcome }>;

export interface ExportOptions {
  /** Only calls that started at or after this time (ms since the epoch). */
  readonly sinceMs?: number;
}

export interface ExportResult {
  /** The subject's records, deduplicated by id, ordered by start time then id. */
  readonly records: CdrRecord[];
  readonly topicExists: boolean;
  /** Records read from the topic. */
  readonly read: number;
  /** Matches that repeated an id already exported (at-least-once delivery). */
  readonly duplicates: number;
  /** Matches left out because the call started before `sinceMs`. */
  readonly beforeSince: number;
  /** Values that held one of the subject's identifiers but are no valid record: reported, never exported. */
  readonly unreadable: number;
  /**
   * Records made under a key the tenant no longer has live (retired, or a
   * key id unknown here): the subject's tokens under it cannot be computed,
   * so these could not be checked. Reported so an export is never silently partial.
   */
  readonly otherKeys: number;
  /** The consumer group the read used, when one was: left behind if `deleted` is false. */
  readonly group?: ReadGroupOutcome;
}

export async function exportSubject(
  source: RecordSource,
  matcher: SubjectMatcher,
  opts: ExportOptions = {},
): Promise<ExportResult> {
  const byId = new Map<string, CdrRecord>();
  let duplicates = 0;
  let beforeSince = 0;
  let unreadable = 0;
  let otherKeys = 0;
  const { exists, read, group } = await source((value) => {
    if (value === null) return;
    if (!matcher.underKnownKey(value)) otherKeys++;
    if (!matcher.mayMatch(value)) return;
    const record = parseRecord(value);
    if (record === undefined) {
      unreadable++;
      return;
    }
    if (!matcher.matches(record)) return;
    if (opts.sinceMs !== undefined && Date.parse(record.startedAt) < opts.sinceMs) beforeSince++;
    else if (byId.has(record.id)) duplicates++;
    else byId.set(record.id, record);
  });
  const records = [...byId.values()].sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id));
  return {
    records,
    topicExists: exists,
    read,
    duplicates,
    beforeSince,
    unreadable,
    otherKeys,
    ...(group === undefined ? {} : { group }),
  };
}

function parseRecord(value: Buffer): CdrRecord | undefined {
  try {
    const parsed = CdrRecord.safeParse(JSON.parse(value.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The export file: a JSON array of records in the published schema (`callveil schema`), one per line. */
export function exportDocument(records: readonly CdrRecord[]): string {
  return records.length === 0 ? '[]\n' : `[\n${records.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`;
}

/**
 * How far before `--since` the Kafka read starts. Records are published when
 * a call ends, so a call that started after `since` was published after it
 * too, unless the PBX clock runs ahead of the gateway's; the margin absorbs
 * such skew, and the start-time filter above makes the result exact.
 */
export const SINCE_SEEK_MARGIN_MS = 3_600_000;
