// The one door out. Every output passes `pass()` before it is written:
// records (Kafka values and keys, JSONL, stdout, the spool), log lines, audit
// entries, live-feed frames, API bodies, metrics and the subject commands'
// output. Each item is checked against the raw values of the call it came
// from (or of the request that produced it) and of recent calls. A hit is a
// breach prevented: the item is not written, the block is counted by output,
// and listeners (the audit log, one ERROR line per call) are told which
// output and field, never the value.
import { createGuard, pathOf, type GuardValues } from './guard.js';
import { RawValues, RecentRawValues } from './raw-values.js';

export const OUTPUT_KINDS = [
  'kafka',
  'jsonl',
  'stdout',
  'spool',
  'log',
  'audit',
  'ws',
  'api',
  'metrics',
  'cli',
] as const;
export type OutputKind = (typeof OUTPUT_KINDS)[number];

export interface PassContext {
  /** The raw values of the call (or request) the item came from. */
  readonly own?: RawValues | undefined;
  /** The parsed item, so a block can name the field it was in. */
  readonly object?: unknown;
  /** The keyed call id and the tenant, for the audit entry. */
  readonly callId?: string | null;
  readonly tenant?: string | null;
}

export interface BlockedItem {
  readonly output: OutputKind;
  /** Dotted field path inside the item ('' when it is not structured). */
  readonly field: string;
  readonly kind: 'number' | 'name';
  readonly callId: string | null;
  readonly tenant: string | null;
  /** First block for this call (or the first without a call): the one to log at ERROR. */
  readonly firstForCall: boolean;
  /**
   * false for a block of a report itself (the audit entry or log line about
   * another block): count it, do not report it again.
   */
  readonly reportable: boolean;
}

export interface Egress {
  /** Raw values of recent calls (the call model feeds it). */
  readonly recent: RecentRawValues;
  /** May this item leave? false: it is blocked, counted and reported. */
  pass(output: OutputKind, text: string, ctx?: PassContext): boolean;
  onBlocked(fn: (b: BlockedItem) => void): () => void;
  blocked(): Readonly<Record<OutputKind, number>>;
  /** Raw values of one request or command (a number a DPO typed), to check its answer against. */
  valuesOf(numbers: readonly string[], names?: readonly string[]): RawValues;
}

export function createEgress(opts: { recentMax?: number } = {}): Egress {
  const guard = createGuard();
  const recent = new RecentRawValues(opts.recentMax);
  const counts = Object.fromEntries(OUTPUT_KINDS.map((k) => [k, 0])) as Record<OutputKind, number>;
  const listeners = new Set<(b: BlockedItem) => void>();
  const loggedCalls = new Set<string>();
  let reporting = false;

  return {
    recent,
    pass(output, text, ctx = {}) {
      const values: GuardValues = { own: ctx.own, recent };
      const hit = guard.check(text, values);
      if (hit === undefined) return true;
      counts[output]++;
      // A report (an audit entry, a log line) that is itself blocked is counted, not reported again.
      if (reporting) {
        const inner: BlockedItem = {
          output,
          field: '',
          kind: hit.kind,
          callId: null,
          tenant: null,
          firstForCall: false,
          reportable: false,
        };
        for (const fn of listeners) fn(inner);
        return false;
      }
      const field =
        ctx.object === undefined ? '' : (pathOf(ctx.object, (s) => guard.check(s, values) !== undefined) ?? '');
      const callId = ctx.callId ?? null;
      const key = callId ?? '';
      const firstForCall = !loggedCalls.has(key);
      if (firstForCall) {
        if (loggedCalls.size > 10_000) loggedCalls.clear();
        loggedCalls.add(key);
      }
      const item: BlockedItem = {
        output,
        field,
        kind: hit.kind,
        callId,
        tenant: ctx.tenant ?? null,
        firstForCall,
        reportable: true,
      };
      reporting = true;
      try {
        for (const fn of listeners) fn(item);
      } finally {
        reporting = false;
      }
      return false;
    },
    onBlocked(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    blocked: () => counts,
    valuesOf(numbers, names = []) {
      const v = new RawValues();
      for (const n of numbers) v.addNumber(n);
      for (const n of names) v.addName(n);
      return v;
    },
  };
}

/** The process's egress: every writer of the gateway and the CLI uses it. */
let processEgress: Egress | undefined;
export function defaultEgress(): Egress {
  return (processEgress ??= createEgress());
}
