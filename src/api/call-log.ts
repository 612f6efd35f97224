// What the console shows of a tenant's calls: the recent call records (after
// privacy, as published), per-extension counts and the day's calls per hour
// in the tenant's time zone. Memory only and bounded; everything restarts
// with the process (the page says so). Built only from call records and the
// enforcer's outcome codes: nothing here ever held a raw value.
import type { CallParty, CallRecord } from '../privacy/call-record.js';
import type { BlockReason } from '../consent/decide.js';

/** Why a recording was kept or blocked: the enforcer's codes (consent/decide.ts BlockReason). */
/** Why the enforcer blocked a recording (the consent decision's reasons). */
export type RecordingReason = BlockReason;

export interface CallEntry {
  readonly record: CallRecord;
  /** The enforcer's reason for a blocked recording; null when none was seen. */
  readonly recordingReason: RecordingReason | null;
  /** The call's internal parties as the tenant's extension method shows them (extension or token). */
  readonly extensions: readonly string[];
}

export interface ExtensionCounts {
  /** As the extension method shows it: the extension (keep) or its token. */
  readonly extension: string;
  calls: number;
  /** Calls this extension answered. */
  answered: number;
  kept: number;
  blocked: number;
  prevented: number;
}

export interface HourCounts {
  readonly hour: number;
  answered: number;
  missed: number;
  other: number;
  kept: number;
  blocked: number;
  prevented: number;
}

export interface DayCounts {
  /** YYYY-MM-DD in the tenant's time zone. */
  readonly date: string;
  readonly hours: HourCounts[];
}

export interface TenantActivity {
  readonly since: string;
  readonly timeZone: string;
  readonly extensions: ExtensionCounts[];
  /** Newest first. */
  readonly days: DayCounts[];
}

export interface CallLog {
  /** When counting started (the process's start): everything here is since then. */
  readonly since: string;
  /** A call record as published; returns what the console shows of it. */
  add(record: CallRecord): CallEntry;
  /** A recording outcome from the enforcer (keyed call id), joined to the call record when it comes. */
  noteRecording(o: {
    readonly tenant: string | null;
    readonly callId: string | null;
    readonly reason?: RecordingReason;
  }): void;
  /** Newest first. */
  recent(tenant: string, limit?: number): CallEntry[];
  activity(tenant: string): TenantActivity;
}

export interface CallLogOptions {
  /** Recent calls kept per tenant (oldest forgotten first). */
  readonly maxCallsPerTenant?: number;
  /** The tenant's IANA time zone. */
  readonly timeZoneOf: (tenant: string) => string;
  readonly now?: () => Date;
}

export const ANSWERED_OUTCOMES: ReadonlySet<string> = new Set(['answered', 'pbx-answered']);
export const MISSED_OUTCOMES: ReadonlySet<string> = new Set(['no-answer', 'cancelled', 'abandoned']);

const MAX_DAYS = 7;
const MAX_EXTENSIONS_PER_TENANT = 10_000;
const MAX_PENDING_REASONS = 1_000;

/** An internal party as the extension method shows it; undefined for everyone else or a redacted one. */
export function extensionLabel(p: CallParty | null | undefined): string | undefined {
  if (p === null || p === undefined || p.kind !== 'extension') return undefined;
  return p.extension ?? p.token ?? undefined;
}

/** The internal parties of a call, in order of appearance, once each. */
export function callExtensions(r: CallRecord): string[] {
  const out = new Set<string>();
  const add = (p: CallParty | null | undefined) => {
    const l = extensionLabel(p);
    if (l !== undefined) out.add(l);
  };
  add(r.caller);
  add(r.firstCalled);
  add(r.answeredBy);
  for (const t of r.transfers) {
    add(t.from);
    add(t.to);
  }
  return [...out];
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Date and hour of an instant in a time zone. */
export function localDayHour(iso: string, timeZone: string): { date: string; hour: number } {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, hour: Number(parts.hour) % 24 };
}

interface TenantState {
  readonly calls: CallEntry[];
  readonly extensions: Map<string, ExtensionCounts>;
  readonly days: Map<string, DayCounts>;
  readonly reasons: Map<string, RecordingReason>;
}

export function createCallLog(opts: CallLogOptions): CallLog {
  const max = opts.maxCallsPerTenant ?? 500;
  const since = (opts.now ?? (() => new Date()))().toISOString();
  const tenants = new Map<string, TenantState>();

  function state(tenant: string): TenantState {
    let s = tenants.get(tenant);
    if (s === undefined)
      tenants.set(tenant, (s = { calls: [], extensions: new Map(), days: new Map(), reasons: new Map() }));
    return s;
  }

  function day(s: TenantState, date: string): DayCounts {
    let d = s.days.get(date);
    if (d === undefined) {
      d = {
        date,
        hours: Array.from({ length: 24 }, (_, hour) => ({
          hour,
          answered: 0,
          missed: 0,
          other: 0,
          kept: 0,
          blocked: 0,
          prevented: 0,
        })),
      };
      s.days.set(date, d);
      // Only the latest days: the oldest by date goes.
      if (s.days.size > MAX_DAYS) s.days.delete([...s.days.keys()].sort()[0]!);
    }
    return d;
  }

  function count(s: TenantState, e: CallEntry): void {
    const r = e.record;
    const rec = r.recording as string;
    const answeredBy = extensionLabel(r.answeredBy);
    for (const ext of e.extensions) {
      let c = s.extensions.get(ext);
      if (c === undefined) {
        if (s.extensions.size >= MAX_EXTENSIONS_PER_TENANT) continue;
        s.extensions.set(ext, (c = { extension: ext, calls: 0, answered: 0, kept: 0, blocked: 0, prevented: 0 }));
      }
      c.calls++;
      if (ext === answeredBy) c.answered++;
      if (rec === 'kept' || rec === 'blocked' || rec === 'prevented') c[rec]++;
    }
    const { date, hour } = localDayHour(r.startedAt, opts.timeZoneOf(r.tenant));
    const h = day(s, date).hours[hour]!;
    if (ANSWERED_OUTCOMES.has(r.outcome)) h.answered++;
    else if (MISSED_OUTCOMES.has(r.outcome)) h.missed++;
    else h.other++;
    if (rec === 'kept' || rec === 'blocked' || rec === 'prevented') h[rec]++;
  }

  return {
    since,
    add(record) {
      const s = state(record.tenant);
      const reason = s.reasons.get(record.callId) ?? null;
      s.reasons.delete(record.callId);
      const entry: CallEntry = {
        record,
        recordingReason: record.recording === 'none' ? null : reason,
        extensions: callExtensions(record),
      };
      s.calls.push(entry);
      if (s.calls.length > max) s.calls.splice(0, s.calls.length - max);
      count(s, entry);
      return entry;
    },
    noteRecording(o) {
      if (o.tenant === null || o.callId === null || o.reason === undefined) return;
      const s = state(o.tenant);
      s.reasons.delete(o.callId);
      s.reasons.set(o.callId, o.reason);
      if (s.reasons.size > MAX_PENDING_REASONS) s.reasons.delete(s.reasons.keys().next().value!);
    },
    recent(tenant, limit = max) {
      const calls = tenants.get(tenant)?.calls ?? [];
      // Newest first by start (records are published at their end).
      return [...calls].sort((a, b) => (a.record.startedAt < b.record.startedAt ? 1 : -1)).slice(0, limit);
    },
    activity(tenant) {
      const s = tenants.get(tenant);
      return {
        since,
        timeZone: opts.timeZoneOf(tenant),
        extensions:
          s === undefined
            ? []
            : [...s.extensions.values()]
                .map((c) => ({ ...c }))
                .sort((a, b) => a.extension.localeCompare(b.extension, 'en', { numeric: true })),
        days:
          s === undefined
            ? []
            : [...s.days.values()]
                .sort((a, b) => (a.date < b.date ? 1 : -1))
                .map((d) => ({ date: d.date, hours: d.hours.map((h) => ({ ...h })) })),
      };
    },
  };
}
