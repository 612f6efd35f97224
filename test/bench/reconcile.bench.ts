// `callveil reconcile` on a large synthetic Master.csv: the load capture's
// 1603 real rows, copied with fresh uniqueids and linkedids (the sequence
// shifted per copy) to --reconcile-rows rows. Timed: the whole reconcile
// (read, tenant per call, keyed ids, privacy, egress guard, a null sink) with
// nothing out yet, and again with everything out (the skip path). Baseline:
// reading the file alone (readStore: splitting and parsing rows), the floor
// for any reconcile.
import { buildPipeline } from '../../src/main.js';
import { defaultEgress } from '../../src/egress/egress.js';
import { readStore } from '../../src/reconcile/master-csv.js';
import { reconcileStore } from '../../src/reconcile/reconcile.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  argNumber,
  benchConfig,
  now,
  nullSink,
  perSec,
  progress,
  quietLogger,
  repoRoot,
  runIfMain,
  type BenchResult,
  type Row,
} from './common.js';

const ID = /(pbx-lab-\d+)\.(\d+)/g;

export function syntheticMasterCsv(rows: number): Buffer {
  const gz = readFileSync(join(repoRoot(), 'test/fixtures/ami/load.Master.csv.gz'));
  const lines = gunzipSync(gz).toString('utf8').trim().split('\n');
  const out: string[] = [];
  for (let k = 0; out.length < rows; k++)
    for (const l of lines) {
      if (out.length >= rows) break;
      out.push(k === 0 ? l : l.replace(ID, (_m, head: string, seq: string) => `${head}.${Number(seq) + k * 100_000}`));
    }
  return Buffer.from(out.join('\n') + '\n');
}

export async function reconcileBench(): Promise<BenchResult> {
  const rows = argNumber('reconcile-rows', 100_000);
  const bytes = syntheticMasterCsv(rows);
  progress('reconcile', `${rows} rows, ${(bytes.length / 1e6).toFixed(1)} MB`);
  const loaded = benchConfig();

  // Floor: reading alone.
  const t0 = now();
  const read = readStore(bytes);
  const readMs = now() - t0;
  if (read.rows.length !== rows) throw new Error(`synthetic file has ${read.rows.length} rows, expected ${rows}`);

  const published = new Set<string>();
  const run = async () => {
    const sink = nullSink();
    const pipeline = buildPipeline(loaded, sink, quietLogger());
    pipeline.onPublished((r) => published.add(r.id));
    const t = now();
    const s = await reconcileStore({
      bytes,
      rules: () => loaded.privacy,
      timeZone: loaded.config.pbx.timeZone,
      recent: defaultEgress().recent,
      pipeline,
      published,
    });
    return { s, ms: now() - t, taken: sink.taken() };
  };
  const fresh = await run();
  if (fresh.s.newlyPublished !== rows) throw new Error(`published ${fresh.s.newlyPublished} of ${rows}`);
  const again = await run();
  if (again.s.alreadyPublished !== rows || again.taken !== 0) throw new Error('second pass published again');

  const readRate = perSec(rows, readMs);
  const freshRate = perSec(rows, fresh.ms);
  const skipRate = perSec(rows, again.ms);
  const result: Row[] = [
    { label: 'reconcile: read Master.csv only (readStore)', value: readRate, unit: 'rows/s', note: 'baseline' },
    {
      label: 'reconcile: nothing out yet (privacy, egress, null sink)',
      value: freshRate,
      unit: 'rows/s',
      baseline: 'read only',
      ratio: freshRate / readRate,
    },
    {
      label: 'reconcile: everything out already (skip path)',
      value: skipRate,
      unit: 'rows/s',
      baseline: 'read only',
      ratio: skipRate / readRate,
    },
  ];
  return {
    bench: 'reconcile',
    rows: result,
    json: {
      reconcileRows: rows,
      reconcileBytes: bytes.length,
      reconcileReadRowsPerSec: readRate,
      reconcileRowsPerSec: freshRate,
      reconcileSkipRowsPerSec: skipRate,
    },
  };
}

runIfMain(import.meta.url, reconcileBench);
