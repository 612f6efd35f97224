// The gateway's metrics: a small facade the code counts through, on
// prom-client (registry, exposition format, process and runtime metrics).
// Counts are kept in plain numbers here and handed to prom-client when it is
// scraped, so a hot path pays an addition, not a label hash. Label values are
// codes, stage names, reasons and tenant ids: never anything from an AMI value.
import { readFileSync } from 'node:fs';
import {
  collectDefaultMetrics,
  Counter as PromCounter,
  Gauge as PromGauge,
  Registry,
  Summary as PromSummary,
  type MetricObjectWithValues,
  type MetricValueWithName,
} from 'prom-client';

export type Labels = Readonly<Record<string, string>>;
/**
 * Every label a family uses, with the values known at start: each combination
 * of them is exported at 0 from the first scrape, so a rate() or an alert has
 * a series before the first event (`{ reason: WITHHELD_REASONS, tenant: [...] }`).
 * A label whose values are not known yet gets an empty list.
 */
export type KnownLabels = Readonly<Record<string, readonly string[]>>;

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}

export interface Gauge {
  set(value: number, labels?: Labels): void;
}

export interface Metrics {
  counter(name: string, help: string, labels?: KnownLabels): Counter;
  gauge(name: string, help: string, labels?: KnownLabels): Gauge;
  /** A gauge read at scrape time (spool depth, live channels). */
  gaugeFn(name: string, help: string, collect: () => number): void;
  /** A counter kept elsewhere (a component's own stats), read at scrape time. */
  counterFn(name: string, help: string, collect: () => number): void;
  /** Observations summed and counted (latency): renders NAME_sum and NAME_count. */
  summary(name: string, help: string): { observe(value: number): void };
  /** Current value of one series (tests, summaries). */
  value(name: string, labels?: Labels): number;
  /** Prometheus text format: the callveil_* families, then the process and runtime ones. */
  render(): Promise<string>;
  /** Runs before each render: for values that are pulled, such as health probes. */
  beforeRender(fn: () => void): void;
  readonly contentType: string;
}

export interface MetricsOptions {
  readonly prefix?: string;
  /** Process, heap, event-loop lag, GC (prom-client's default metrics) and build info: the live gateway. */
  readonly runtime?: boolean;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_VALUE = /^[A-Za-z0-9_.:@/-]{0,64}$/;

interface Series {
  readonly labels: Labels;
  value: number;
}

interface Family {
  readonly kind: 'counter' | 'gauge' | 'summary' | 'fn';
  readonly labelNames: readonly string[];
  readonly series: Map<string, Series>;
  readonly read?: () => number;
}

function checkLabels(f: Family, name: string, labels: Labels): void {
  for (const [k, v] of Object.entries(labels)) {
    if (!f.labelNames.includes(k)) throw new Error(`metric ${name}: label ${k} was not declared`);
    // Refusing free text keeps caller data out of the metrics by construction.
    if (!LABEL_VALUE.test(v)) throw new Error(`metric ${name}: label ${k} has a value that is not a plain code`);
  }
}

/** Every combination of the known values (none while a label has no known value yet). */
function combinations(known: KnownLabels): Labels[] {
  let out: Array<Record<string, string>> = [{}];
  for (const [k, values] of Object.entries(known)) out = out.flatMap((l) => values.map((v) => ({ ...l, [k]: v })));
  return Object.keys(known).length === 0 ? [] : out;
}

/** The package's version, for callveil_build_info (read once: package.json sits at the package root, from src/ and dist/ alike). */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

// One per process, however many gateways (or tests) create metrics: the
// default collectors start an event-loop monitor and a GC observer each.
let runtimeRegistry: Registry | undefined;
function runtime(): Registry {
  if (runtimeRegistry === undefined) {
    runtimeRegistry = new Registry();
    collectDefaultMetrics({ register: runtimeRegistry });
  }
  return runtimeRegistry;
}

/**
 * A summary without quantiles: prom-client's sliding quantiles cost ~3 µs an
 * observation (measured), this an addition. prom-client renders whatever get()
 * returns; its typings call the type an enum, the registry writes the string.
 */
class SumAndCount extends PromSummary {
  readonly #name: string;
  readonly #help: string;

  constructor(
    name: string,
    help: string,
    registry: Registry,
    private readonly totals: { sum: number; count: number },
  ) {
    super({ name, help, registers: [registry], percentiles: [] });
    this.#name = name;
    this.#help = help;
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values = [
      { metricName: `${this.#name}_sum`, labels: {}, value: this.totals.sum },
      { metricName: `${this.#name}_count`, labels: {}, value: this.totals.count },
    ];
    return { name: this.#name, help: this.#help, type: 'summary', aggregator: 'sum', values } as unknown as Awaited<
      ReturnType<PromSummary['get']>
    >;
  }
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const prefix = opts.prefix ?? 'callveil_';
  const registry = new Registry();
  const families = new Map<string, Family>();
  const beforeRender: Array<() => void> = [];

  function key(f: Family, labels: Labels): string {
    return f.labelNames.map((n) => labels[n] ?? '').join('\u0000');
  }

  function series(f: Family, name: string, labels: Labels): Series {
    const k = key(f, labels);
    let s = f.series.get(k);
    if (s === undefined) {
      checkLabels(f, name, labels);
      s = { labels: { ...labels }, value: 0 };
      f.series.set(k, s);
    }
    return s;
  }

  function fullName(name: string): string {
    const full = prefix + name;
    if (!NAME.test(full)) throw new Error(`bad metric name ${full}`);
    return full;
  }

  /** The family of that name, created on first use; a second caller must declare the same labels. */
  function family(name: string, help: string, kind: 'counter' | 'gauge', known: KnownLabels): Family {
    const full = fullName(name);
    const labelNames = Object.keys(known).sort();
    let f = families.get(full);
    if (f === undefined) {
      const fam: Family = { kind, labelNames, series: new Map() };
      const publish = (m: PromCounter | PromGauge) => {
        m.reset();
        for (const s of fam.series.values()) {
          if (m instanceof PromCounter) m.inc(s.labels, s.value);
          else m.set(s.labels, s.value);
        }
      };
      const config = {
        name: full,
        help,
        labelNames,
        registers: [registry],
        collect(this: PromCounter | PromGauge) {
          publish(this);
        },
      };
      if (kind === 'counter') new PromCounter(config);
      else new PromGauge(config);
      // An unlabelled family has its one series from the start.
      if (labelNames.length === 0) fam.series.set('', { labels: {}, value: 0 });
      families.set(full, fam);
      f = fam;
    } else if (f.kind !== kind || f.labelNames.join(',') !== labelNames.join(',')) {
      throw new Error(`metric ${full} registered twice with different types or labels`);
    }
    for (const labels of combinations(known)) series(f, full, labels);
    return f;
  }

  function fnFamily(name: string, help: string, kind: 'counter' | 'gauge', read: () => number): void {
    const full = fullName(name);
    if (families.has(full)) return; // the first source stays (one gateway per registry)
    families.set(full, { kind: 'fn', labelNames: [], series: new Map(), read });
    if (kind === 'counter')
      new PromCounter({
        name: full,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    else
      new PromGauge({
        name: full,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
  }

  if (opts.runtime) {
    const build = family('build_info', 'The running callveil: version and Node.js release (always 1)', 'gauge', {
      version: [packageVersion()],
      node: [process.version],
    });
    for (const s of build.series.values()) s.value = 1;
  }

  return {
    counter(name, help, labels = {}) {
      const f = family(name, help, 'counter', labels);
      const full = prefix + name;
      return { inc: (l = {}, by = 1) => void (series(f, full, l).value += by) };
    },
    gauge(name, help, labels = {}) {
      const f = family(name, help, 'gauge', labels);
      const full = prefix + name;
      return { set: (value, l = {}) => void (series(f, full, l).value = value) };
    },
    gaugeFn(name, help, collect) {
      fnFamily(name, help, 'gauge', collect);
    },
    counterFn(name, help, collect) {
      fnFamily(name, help, 'counter', collect);
    },
    summary(name, help) {
      const full = fullName(name);
      const totals = { sum: 0, count: 0 };
      if (!families.has(full)) {
        new SumAndCount(full, help, registry, totals);
        families.set(full, { kind: 'summary', labelNames: [], series: new Map() });
      }
      return {
        observe(value) {
          totals.sum += value;
          totals.count++;
        },
      };
    },
    value(name, labels = {}) {
      const f = families.get(prefix + name);
      if (f === undefined) return 0;
      if (f.read) return f.read();
      return f.series.get(key(f, labels))?.value ?? 0;
    },
    beforeRender(fn) {
      beforeRender.push(fn);
    },
    async render() {
      for (const fn of beforeRender) fn();
      const own = await registry.metrics();
      return opts.runtime ? `${own}\n${await runtime().metrics()}` : own;
    },
    contentType: registry.contentType,
  };
}
