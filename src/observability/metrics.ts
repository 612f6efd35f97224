// Counters and gauges in Prometheus text format. Label values are codes,
// stage names, reasons and tenant ids: never anything from an AMI value.
export type Labels = Readonly<Record<string, string>>;

interface Series {
  readonly labels: Labels;
  value: number;
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'summary';
  readonly series: Map<string, Series>;
  readonly collect?: () => number;
}

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}

export interface Gauge {
  set(value: number, labels?: Labels): void;
}

export interface Metrics {
  counter(name: string, help: string): Counter;
  gauge(name: string, help: string): Gauge;
  /** A gauge read at scrape time (spool depth, live channels). */
  gaugeFn(name: string, help: string, collect: () => number): void;
  /** A counter kept elsewhere (a component's own stats), read at scrape time. */
  counterFn(name: string, help: string, collect: () => number): void;
  /** Observations summed and counted (latency): renders NAME_sum and NAME_count. */
  summary(name: string, help: string): { observe(value: number): void };
  /** Current value of one series (tests, summaries). */
  value(name: string, labels?: Labels): number;
  render(): string;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_VALUE = /^[A-Za-z0-9_.:@/-]{0,64}$/;

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

function checkLabels(labels: Labels): void {
  for (const [k, v] of Object.entries(labels)) {
    // Refusing free text keeps caller data out of the metrics by construction.
    if (!NAME.test(k) || !LABEL_VALUE.test(v))
      throw new Error(`metric label ${k} has a value that is not a plain code`);
  }
}

function formatLabels(labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export function createMetrics(prefix = 'callveil_'): Metrics {
  const families = new Map<string, Family>();

  function family(name: string, help: string, type: Family['type'], collect?: () => number): Family {
    const full = prefix + name;
    if (!NAME.test(full)) throw new Error(`bad metric name ${full}`);
    let f = families.get(full);
    if (f === undefined) {
      f = { name: full, help, type, series: new Map(), ...(collect ? { collect } : {}) };
      families.set(full, f);
    }
    return f;
  }

  function series(f: Family, labels: Labels): Series {
    const k = key(labels);
    let s = f.series.get(k);
    if (s === undefined) {
      checkLabels(labels);
      s = { labels, value: 0 };
      f.series.set(k, s);
    }
    return s;
  }

  return {
    counter(name, help) {
      const f = family(name, help, 'counter');
      return { inc: (labels = {}, by = 1) => void (series(f, labels).value += by) };
    },
    gauge(name, help) {
      const f = family(name, help, 'gauge');
      return { set: (value, labels = {}) => void (series(f, labels).value = value) };
    },
    gaugeFn(name, help, collect) {
      family(name, help, 'gauge', collect);
    },
    counterFn(name, help, collect) {
      family(name, help, 'counter', collect);
    },
    summary(name, help) {
      const f = family(name, help, 'summary');
      const sum = series(f, { stat: 'sum' });
      const count = series(f, { stat: 'count' });
      return {
        observe(value) {
          sum.value += value;
          count.value++;
        },
      };
    },
    value(name, labels = {}) {
      const f = families.get(prefix + name);
      if (f?.collect) return f.collect();
      return f?.series.get(key(labels))?.value ?? 0;
    },
    render() {
      const out: string[] = [];
      for (const f of families.values()) {
        out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
        if (f.collect) out.push(`${f.name} ${f.collect()}`);
        if (f.type === 'summary') {
          for (const s of f.series.values()) out.push(`${f.name}_${s.labels.stat} ${s.value}`);
          continue;
        }
        for (const s of f.series.values()) out.push(`${f.name}${formatLabels(s.labels)} ${s.value}`);
      }
      return out.join('\n') + '\n';
    },
  };
}
