// Which parts of the gateway work right now: the body of /readyz, and one
// callveil_health_ok{part} series each. Any module reports its part through
// set() (`health.set('consent', { ok: false, reason: 'stop-failed' })`), or
// hands a probe that is read at each report and each scrape.
// Readiness means the API and console can serve: only the parts they need
// gate it, so the PBX being away (ami) never takes the console offline.
import type { Metrics } from './metrics.js';

export interface PartStatus {
  readonly ok: boolean;
  /** A code, never free text: why it is failing (or, while ok, what limits it, e.g. `disabled`). */
  readonly reason?: string;
}

export interface HealthReporter {
  set(part: string, status: PartStatus): void;
  /** A part whose state lives elsewhere (a spool, a store): read at every report and every scrape. */
  probe(part: string, read: () => PartStatus): void;
}

export interface HealthReport {
  /** The API and console can serve: every required part is ok. */
  readonly ready: boolean;
  readonly parts: Readonly<Record<string, PartStatus & { readonly required?: true }>>;
}

export interface Health extends HealthReporter {
  report(): HealthReport;
}

export const OK: PartStatus = { ok: true };

const PART = /^[a-z][a-z0-9-]{0,39}$/;
const REASON = /^[a-z0-9][a-z0-9-]{0,59}$/;

export interface HealthOptions {
  /** Every part known at start, with its status until it first reports. */
  readonly parts: Readonly<Record<string, PartStatus>>;
  /** The parts the API and console cannot serve without. */
  readonly required: readonly string[];
  readonly metrics?: Pick<Metrics, 'gauge' | 'beforeRender'>;
}

export function createHealth(opts: HealthOptions): Health {
  const parts = new Map<string, PartStatus>();
  const required = new Set(opts.required);
  const gauge = opts.metrics?.gauge('health_ok', 'Gateway parts working (1) or failing (0); see /readyz for why', {
    part: [...new Set([...Object.keys(opts.parts), ...required])],
  });

  function set(part: string, status: PartStatus): void {
    // Codes only: a reason ends up in an HTTP body and a metric label.
    if (!PART.test(part)) throw new Error(`health part "${part}" is not a plain name`);
    if (status.reason !== undefined && !REASON.test(status.reason))
      throw new Error(`health part ${part}: the reason is not a plain code`);
    parts.set(part, status.reason === undefined ? { ok: status.ok } : { ok: status.ok, reason: status.reason });
    gauge?.set(status.ok ? 1 : 0, { part });
  }

  const probes = new Map<string, () => PartStatus>();
  function refresh(): void {
    for (const [part, read] of probes) set(part, read());
  }

  for (const [part, status] of Object.entries(opts.parts)) set(part, status);
  for (const part of required) if (!parts.has(part)) set(part, { ok: false, reason: 'not-reported' });
  opts.metrics?.beforeRender(refresh);

  return {
    set,
    probe(part, read) {
      probes.set(part, read);
      set(part, read());
    },
    report() {
      refresh();
      const out: Record<string, PartStatus & { required?: true }> = {};
      for (const [part, status] of [...parts].sort(([a], [b]) => (a < b ? -1 : 1)))
        out[part] = required.has(part) ? { ...status, required: true } : status;
      return { ready: [...required].every((p) => parts.get(p)?.ok === true), parts: out };
    },
  };
}

/** The gateway's parts: AMI, the sink, consent enforcement and its store, the rules. The console needs the consent store. */
export function gatewayHealth(metrics?: Pick<Metrics, 'gauge' | 'beforeRender'>): Health {
  return createHealth({
    parts: {
      ami: { ok: false, reason: 'connecting' },
      sink: OK,
      consent: OK,
      'consent-store': OK,
      rules: OK,
    },
    required: ['consent-store'],
    ...(metrics ? { metrics } : {}),
  });
}
