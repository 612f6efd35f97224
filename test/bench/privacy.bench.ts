// The privacy chain alone: createSanitiser on the RawCdrs the assembler makes
// from the load capture (collected first, then timed). Baseline: one bare
// HMAC-SHA256 per number (caller, callee), the floor for keyed pseudonyms.
import { createHmac } from 'node:crypto';
import { createCallModel } from '../../src/assemble/call-model.js';
import type { RawCdr } from '../../src/assemble/raw-cdr.js';
import { createEgress } from '../../src/egress/egress.js';
import type { RecentRawValues } from '../../src/egress/raw-values.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
import { classifyNumber } from '../../src/privacy/numbers.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import { createTenantResolver } from '../../src/privacy/tenants.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { KEY_ACME } from '../helpers/configs.js';
import {
  argNumber,
  benchConfig,
  loadCapture,
  now,
  perSec,
  profiled,
  progress,
  runIfMain,
  type BenchResult,
  type Row,
} from './common.js';

/** Runs `body` over `items` again and again until minMs passed; returns items per second. */
function timed<T>(items: readonly T[], minMs: number, body: (item: T) => unknown, beforePass?: () => void): number {
  let n = 0;
  let sink = 0;
  const t0 = now();
  do {
    beforePass?.();
    for (const item of items) if (body(item)) sink++;
    n += items.length;
  } while (now() - t0 < minMs && n < 50_000_000);
  if (sink < 0) console.log(sink);
  return perSec(n, now() - t0);
}

export async function collectRawCdrs(recent?: RecentRawValues): Promise<RawCdr[]> {
  const { config, privacy } = benchConfig();
  const model = createCallModel({
    timeZone: config.pbx.timeZone,
    ...config.assemble,
    rules: () => privacy.callModel,
    ...(recent ? { recent } : {}),
  });
  const raws: RawCdr[] = [];
  model.onLeg((raw) => raws.push(raw));
  const parser = createFrameParser({ onMessage: (m) => model.handle(m) });
  parser.push((await loadCapture()).raw);
  parser.end();
  return raws;
}

export async function privacyBench(): Promise<BenchResult> {
  const minMs = argNumber('privacy-min-ms', 2000);
  const loaded = benchConfig();
  const resolver = createTenantResolver(loaded.tenants, loaded.config.defaultTenant);
  const egress = createEgress();
  const raws = await collectRawCdrs(egress.recent);
  // acme's key and number policy, as benchConfig() sets them.
  const key = Buffer.from(KEY_ACME, 'hex');
  const policy = { defaultRegion: 'GB', fallbackRegions: ['US'], extensionMaxDigits: 6 };

  // What the chain produces, checked once; the timed loops below repeat it.
  const records: CdrRecord[] = [];
  const texts: Array<{ text: string; own: RawCdr['raw'] }> = [];
  const once = createSanitiser(resolver);
  for (const raw of raws) {
    const r = once(raw);
    if (!r.ok) continue;
    records.push(r.record);
    texts.push({ text: JSON.stringify(r.record), own: raw.raw });
  }
  progress(
    'privacy',
    `${raws.length} RawCdrs from the load capture, ${records.length} records (${raws.length - records.length} withheld)`,
  );

  const sanitise = createSanitiser(resolver);
  timed(raws, 300, (raw) => sanitise(raw).ok); // warm-up
  const warm = await profiled('privacy', 'warm', () => timed(raws, minMs, (raw) => sanitise(raw).ok));
  // New rules and sanitiser per pass: every distinct number classified as on first sight, repeats cached as in live traffic.
  const freshSanitiser = () => createSanitiser(createTenantResolver(loaded.tenants, loaded.config.defaultTenant));
  let fresh = freshSanitiser();
  const cold = await profiled('privacy', 'cold', () =>
    timed(
      raws,
      minMs,
      (raw) => fresh(raw).ok,
      () => (fresh = freshSanitiser()),
    ),
  );
  const hmacFloor = timed(raws, minMs, (raw) => {
    createHmac('sha256', key).update(raw.source).digest();
    return createHmac('sha256', key).update(raw.destination).digest();
  });
  const zodOnly = timed(records, minMs / 2, (rec) => CdrRecord.safeParse(rec).success);
  const classifyOnly = timed(
    raws,
    minMs / 2,
    (raw) => classifyNumber(raw.source, policy).kind !== classifyNumber(raw.destination, policy).kind,
  );
  // The egress guard: each record checked against its call's raw values and the recent calls' (what the pipeline does),
  // and log lines against the recent calls alone. Baseline: JSON.stringify of the record, the cost of making it at all.
  const stringifyOnly = timed(records, minMs / 2, (rec) => JSON.stringify(rec).length > 0);
  const guardRecord = timed(texts, minMs / 2, (x) => egress.pass('kafka', x.text, { own: x.own }));
  const logLines = records.map(
    (r, i) =>
      `{"level":30,"time":"2026-11-25T10:00:00.000Z","svc":"callveil","component":"delivery","recordId":"${r.id}","n":${i},"msg":"record sent"}\n`,
  );
  const guardLog = timed(logLines, minMs / 2, (l) => egress.pass('log', l));
  const guardHits = Object.values(egress.blocked()).reduce((a, n) => a + n, 0);
  progress(
    'privacy',
    `guard ${Math.round(guardRecord)} records/s, ${Math.round(guardLog)} log lines/s, ${guardHits} hits`,
  );
  progress('privacy', `warm ${Math.round(warm)}/s, cold ${Math.round(cold)}/s, HMAC floor ${Math.round(hmacFloor)}/s`);

  const rows: Row[] = [
    {
      label: 'privacy: createSanitiser, warm (numbers cached)',
      value: warm,
      unit: 'records/s',
      baseline: 'bare HMAC x2',
      ratio: warm / hmacFloor,
      note: `${raws.length} real RawCdrs, repeated`,
    },
    {
      label: 'privacy: createSanitiser, cold (new per pass)',
      value: cold,
      unit: 'records/s',
      baseline: 'bare HMAC x2',
      ratio: cold / hmacFloor,
      note: 'new resolver + sanitiser per pass of 1603: each distinct number parsed once per pass',
    },
    { label: 'privacy: baseline: bare createHmac per number (x2)', value: hmacFloor, unit: 'records/s' },
    {
      label: 'privacy: part: CdrRecord.safeParse (zod) alone',
      value: zodOnly,
      unit: 'records/s',
      baseline: 'bare HMAC x2',
      ratio: zodOnly / hmacFloor,
      note: 'for the profile: schema check per record',
    },
    {
      label: 'egress guard: a record against its call and the recent calls',
      value: guardRecord,
      unit: 'records/s',
      baseline: 'JSON.stringify of the record',
      ratio: guardRecord / stringifyOnly,
      note: `${guardHits} hits on real records (must be 0); recent set ${egress.recent.size} values`,
    },
    {
      label: 'egress guard: a log line against the recent calls',
      value: guardLog,
      unit: 'lines/s',
      baseline: 'JSON.stringify of the record',
      ratio: guardLog / stringifyOnly,
    },
    {
      label: 'privacy: part: classifyNumber x2, uncached',
      value: classifyOnly,
      unit: 'records/s',
      baseline: 'bare HMAC x2',
      ratio: classifyOnly / hmacFloor,
      note: 'for the profile: libphonenumber per record',
    },
  ];
  return {
    bench: 'privacy',
    rows,
    json: {
      privacyRecordsPerSec: warm,
      privacyColdRecordsPerSec: cold,
      privacyFloorRecordsPerSec: hmacFloor,
      privacyRatioToFloor: warm / hmacFloor,
      privacyColdRatioToFloor: cold / hmacFloor,
      privacyZodRecordsPerSec: zodOnly,
      privacyClassifyRecordsPerSec: classifyOnly,
      rawCdrs: raws.length,
      guardRecordsPerSec: guardRecord,
      guardLogLinesPerSec: guardLog,
      guardHitsOnRealRecords: guardHits,
      stringifyRecordsPerSec: stringifyOnly,
    },
  };
}

runIfMain(import.meta.url, privacyBench);
