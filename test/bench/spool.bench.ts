// The disk spool with its records encrypted at rest (each line sealed under
// the tenant's spool key, AES-256-GCM) against the same spool in the clear,
// in one run: write (encode, seal, append) and drain (read the oldest
// segment, open, decode, delete) in records/s. The egress check, the same on
// both sides, is left out. fsync `interval` measures what encryption costs
// (CPU); fsync `always` (the default) what a spooling gateway sees, where
// the disk's flush per record dominates.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSpoolLine, encodeSpoolLine, type OutRecord } from '../../src/sink/sink.js';
import { openSpool, type SpoolOptions } from '../../src/sink/spool.js';
import { openSpoolLine, sealSpoolRecord, spoolKeysOf, type SpoolKeys } from '../../src/sink/spool-seal.js';
import { argNumber, now, perSec, progress, runIfMain, type BenchResult, type Row } from './common.js';

const TENANTS = ['acme', 'globex', 'northwind'];

/** A leg record of the usual size (~700 bytes: tokens, keyed ids, times), as the pipeline serialises it. */
function records(n: number): OutRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const tenant = TENANTS[i % TENANTS.length]!;
    const id = randomBytes(16).toString('hex').replace(/\d/g, 'k');
    const value = JSON.stringify({
      schema: 'callveil.cdr/v2',
      tenant,
      id,
      callId: randomBytes(16).toString('hex'),
      legId: randomBytes(16).toString('hex'),
      start: '2026-12-02T07:21:12.000Z',
      answer: '2026-12-02T07:21:15.000Z',
      end: '2026-12-02T07:24:02.000Z',
      durationSec: 170,
      billableSec: 167,
      disposition: 'ANSWERED',
      direction: 'inbound',
      caller: {
        kind: 'external',
        token: randomBytes(12).toString('base64url'),
        kid: `${tenant}-2026-11`,
        region: 'GB',
      },
      callee: { kind: 'extension', token: randomBytes(12).toString('base64url'), kid: `${tenant}-2026-11` },
      callerName: { redacted: true },
      lastApp: 'Dial',
      trunk: 'pstn',
      recording: { allowed: false, reason: 'consent-off' },
    });
    return { stream: 'cdr', tenant, id, key: id, value };
  });
}

interface Side {
  readonly writePerSec: number;
  readonly drainPerSec: number;
  readonly bytes: number;
}

function once(recs: readonly OutRecord[], keys: SpoolKeys | undefined, fsync: SpoolOptions['fsync']): Side {
  const dir = mkdtempSync(join(tmpdir(), 'callveil-bench-spool-'));
  try {
    const spool = openSpool({
      dir,
      maxBytes: 1 << 30,
      segmentMaxBytes: 1 << 20,
      fsync,
      fsyncIntervalMs: 100,
    });
    const t0 = now();
    // One append per record, as the delivery layer spools them.
    for (const r of recs) spool.append([keys === undefined ? encodeSpoolLine(r) : sealSpoolRecord(keys, r)]);
    const t1 = now();
    const bytes = spool.bytes();
    let n = 0;
    const t2 = now();
    for (let seg = spool.oldest(); seg !== undefined; seg = spool.oldest()) {
      for (const line of seg.lines) {
        if (keys === undefined) decodeSpoolLine(line);
        else if (!openSpoolLine(keys, line).ok) throw new Error('a sealed line did not open');
        n++;
      }
      spool.remove(seg.name);
    }
    const t3 = now();
    spool.close();
    if (n !== recs.length) throw new Error(`drained ${n} of ${recs.length}`);
    return { writePerSec: perSec(recs.length, t1 - t0), drainPerSec: perSec(n, t3 - t2), bytes };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Best of `rounds`, the two sides alternating so both see the same machine. */
function compare(recs: readonly OutRecord[], keys: SpoolKeys, fsync: SpoolOptions['fsync'], rounds: number) {
  let plain: Side = { writePerSec: 0, drainPerSec: 0, bytes: 0 };
  let sealed: Side = { writePerSec: 0, drainPerSec: 0, bytes: 0 };
  const best = (a: Side, b: Side): Side => ({
    writePerSec: Math.max(a.writePerSec, b.writePerSec),
    drainPerSec: Math.max(a.drainPerSec, b.drainPerSec),
    bytes: b.bytes,
  });
  for (let r = 0; r < rounds; r++) {
    plain = best(plain, once(recs, undefined, fsync));
    sealed = best(sealed, once(recs, keys, fsync));
  }
  return { plain, sealed };
}

export async function spoolBench(): Promise<BenchResult> {
  const n = argNumber('spool-records', 50_000);
  const nAlways = argNumber('spool-records-fsync', 1_000);
  const idKeys = new Map(TENANTS.map((t) => [t, { idKey: randomBytes(32) }] as const));
  const keys = spoolKeysOf({ tenants: () => idKeys, shredded: () => false });
  const recs = records(n);
  progress('spool', `${n} records, fsync interval`);
  const cpu = compare(recs, keys, 'interval', 3);
  progress('spool', `${nAlways} records, fsync always`);
  const disk = compare(recs.slice(0, nAlways), keys, 'always', 1);
  const rows: Row[] = [];
  for (const [what, c, count] of [
    ['fsync interval', cpu, n],
    ['fsync always', disk, nAlways],
  ] as const) {
    rows.push(
      {
        label: `spool: write, encrypted (${count} records, ${what})`,
        value: c.sealed.writePerSec,
        unit: 'records/s',
        baseline: 'same, in the clear',
        ratio: c.sealed.writePerSec / c.plain.writePerSec,
      },
      {
        label: `spool: write, in the clear (${count} records, ${what})`,
        value: c.plain.writePerSec,
        unit: 'records/s',
      },
      {
        label: `spool: drain, encrypted (${count} records, ${what})`,
        value: c.sealed.drainPerSec,
        unit: 'records/s',
        baseline: 'same, in the clear',
        ratio: c.sealed.drainPerSec / c.plain.drainPerSec,
        ...(what === 'fsync interval'
          ? { note: `${(c.sealed.bytes / c.plain.bytes).toFixed(2)}x the bytes on disk (iv, tag, base64url)` }
          : {}),
      },
      {
        label: `spool: drain, in the clear (${count} records, ${what})`,
        value: c.plain.drainPerSec,
        unit: 'records/s',
      },
    );
  }
  return {
    bench: 'spool',
    rows,
    json: {
      spoolWriteEncryptedPerSec: cpu.sealed.writePerSec,
      spoolWritePlainPerSec: cpu.plain.writePerSec,
      spoolWriteRatio: cpu.sealed.writePerSec / cpu.plain.writePerSec,
      spoolDrainEncryptedPerSec: cpu.sealed.drainPerSec,
      spoolDrainPlainPerSec: cpu.plain.drainPerSec,
      spoolDrainRatio: cpu.sealed.drainPerSec / cpu.plain.drainPerSec,
      spoolBytesRatio: cpu.sealed.bytes / cpu.plain.bytes,
      spoolWriteFsyncEncryptedPerSec: disk.sealed.writePerSec,
      spoolWriteFsyncPlainPerSec: disk.plain.writePerSec,
      spoolWriteFsyncRatio: disk.sealed.writePerSec / disk.plain.writePerSec,
    },
    notes: [
      'spool: one append per record as the delivery layer spools them; the egress check (the same either way) is left out',
    ],
  };
}

runIfMain(import.meta.url, spoolBench);
