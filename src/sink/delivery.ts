// At-least-once delivery: records go straight to the primary sink (Kafka)
// while it answers; when it fails or stalls they go to the disk spool, and
// from then on every new record queues behind them, so the spool drains in
// order before direct sending resumes. A record's write resolves once Kafka
// acknowledged it or the spool holds it durably. Nothing is dropped: a full
// spool holds writers back (backpressure) and says so. An outage logs a
// line when spooling starts and one when it ends (with its counts), never a
// line per record or per retry.
//
// Every spooled record is sealed under its tenant's spool key (spool-seal.ts):
// the spool on disk holds no record in the clear. At drain a line that cannot
// be opened is not sent: a crypto-shredded tenant's (withheld, reason
// shredded) or one that does not open (lost, stage spool-unreadable), counted
// through events.dropped and logged with counts, never with data.
import { GatewayError } from '../errors.js';
import { defaultEgress, type Egress } from '../egress/egress.js';
import { encodeSpoolLine, type OutRecord, type RecordSink } from './sink.js';
import type { Spool } from './spool.js';
import { openSpoolLine, sealSpoolRecord, type SpoolDropReason, type SpoolKeys } from './spool-seal.js';

export type DeliveryMode = 'direct' | 'spooling';

export interface DeliveryEvents {
  /** Called when a record lands in the spool, the spool is found full, or a segment drained. */
  spooled?(n: number): void;
  spoolFull?(full: boolean): void;
  drained?(n: number): void;
  modeChanged?(mode: DeliveryMode): void;
  /**
   * Spooled records not sent because they cannot be read: `shredded` (the
   * tenant's key was destroyed) or `unreadable` (altered, or not a record).
   */
  dropped?(reason: SpoolDropReason, tenant: string | undefined, n: number): void;
}

/** How a primary tells the fate of one submitted record, without a promise per record. */
export interface Ack {
  ack(): void;
  nack(err: unknown): void;
}

/**
 * A primary may take records with `submit` besides `write`: the same
 * contract (each record acknowledged or failed exactly once), without the
 * promises a write makes, which at 10^5 records/s are a large part of what
 * the delivery layer costs.
 */
export interface PrimarySink extends Pick<RecordSink, 'write' | 'close'> {
  submit?(record: OutRecord, ack: Ack): void;
}

export interface DeliveryOptions {
  readonly primary: PrimarySink;
  readonly spool: Spool;
  /** The tenants' spool keys: every spooled record is sealed under its tenant's (no plaintext fallback). */
  readonly keys: SpoolKeys;
  /** The door spool lines pass (default: the process's egress). */
  readonly egress?: Egress;
  /** A direct write not acknowledged in this time goes to the spool (Kafka may still take it: a duplicate, same id). */
  readonly sendTimeoutMs: number;
  /** Pause between drain attempts while the primary is failing. */
  readonly retryIntervalMs: number;
  /** On close, how long in-flight direct sends may take before their records are spooled instead. */
  readonly closeDeadlineMs: number;
  readonly events?: DeliveryEvents;
  readonly log: {
    warn(o: object, m: string): void;
    error(o: object, m: string): void;
    info(o: object, m: string): void;
  };
}

export interface DeliverySink extends RecordSink {
  mode(): DeliveryMode;
  spoolFull(): boolean;
  /** Resolves when the spool is empty (or rejects after timeoutMs). */
  drained(timeoutMs: number): Promise<void>;
}

/** A direct send: the primary's Ack for it. Its spool line is made only if it ends up spooled. */
interface Flight extends Ack {
  readonly record: OutRecord;
  /** Date.now() past which it is spooled instead (Kafka may still take it: a duplicate, same id). */
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  /** Acknowledged, or handed to the spool: a late answer is ignored. */
  settled: boolean;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new GatewayError('GW_SINK_UNAVAILABLE', `no acknowledgement within ${ms} ms`)),
      ms,
    );
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

export function createDeliverySink(opts: DeliveryOptions): DeliverySink {
  const { spool, primary, log } = opts;
  let mode: DeliveryMode = spool.isEmpty() ? 'direct' : 'spooling';
  let full = false;
  let closed = false;
  let draining: Promise<void> | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  // This spooling episode: what failed first, and the drain attempts that failed since (logged once, counted).
  let drainFailures = 0;
  // Writers held back by a full spool, in arrival order.
  const waiting: Array<{ record: OutRecord; resolve: () => void; reject: (err: unknown) => void }> = [];
  // Direct sends in the order they began (every one has the same timeout, so the oldest expires
  // first): one timer watches the oldest instead of one timer per record, and settled ones are
  // only marked, then dropped from the front, which keeps the hot path free of per-record bookkeeping.
  let flights: Flight[] = [];
  let oldest = 0;
  let inFlight = 0;
  let flightTimer: NodeJS.Timeout | undefined;

  const setMode = (m: DeliveryMode, code?: string) => {
    if (m === mode) return;
    mode = m;
    if (m === 'spooling') {
      drainFailures = 0;
      log.warn(
        { component: 'delivery', mode: m, code, spoolRecords: spool.records() },
        'primary sink unavailable: spooling to disk',
      );
    } else
      log.info(
        { component: 'delivery', mode: m, failedDrainAttempts: drainFailures },
        'spool drained: sending directly again',
      );
    opts.events?.modeChanged?.(m);
  };

  const setFull = (f: boolean) => {
    if (f === full) return;
    full = f;
    if (f)
      log.error(
        { component: 'delivery', spoolBytes: spool.bytes(), code: 'GW_SPOOL_FULL' },
        'spool full: holding back new records until Kafka takes some',
      );
    opts.events?.spoolFull?.(f);
  };

  /** Moves held-back writers into the spool while there is room. */
  const admitWaiting = () => {
    while (waiting.length > 0) {
      try {
        appendChecked([waiting[0]!.record]);
      } catch (err) {
        if (err instanceof GatewayError && err.code === 'GW_SPOOL_FULL') return setFull(true);
        // Its tenant has no key now (GW_SPOOL_KEY): that write fails, the ones behind it go on.
        if (err instanceof GatewayError && err.code === 'GW_SPOOL_KEY') {
          waiting.shift()!.reject(err);
          continue;
        }
        throw err;
      }
      waiting.shift()!.resolve();
      opts.events?.spooled?.(1);
    }
    setFull(false);
  };

  // The spool is an output too: a line holding a raw value of a call never reaches the disk.
  const egress = opts.egress ?? defaultEgress();
  /**
   * The guard reads the record in the clear, then it is sealed under its tenant's key (throws
   * GW_SPOOL_KEY when it has none: never written in the clear). false: the guard withheld it
   * (counted and reported by the egress, not written).
   */
  const appendChecked = (records: readonly OutRecord[], force?: boolean): boolean => {
    const sealed: string[] = [];
    for (const r of records) {
      const line = encodeSpoolLine(r);
      if (egress.pass('spool', line)) sealed.push(sealSpoolRecord(opts.keys, r, line));
    }
    if (sealed.length > 0) spool.append(sealed, force);
    return sealed.length === records.length;
  };

  /** At shutdown, however full; a record that cannot be sealed (no key) fails its own write only. */
  const forceToSpool = (record: OutRecord): Promise<void> => {
    try {
      appendChecked([record], true);
      return Promise.resolve();
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'GW_SPOOL_KEY') return Promise.reject(err);
      throw err;
    }
  };

  const toSpool = (record: OutRecord): Promise<void> => {
    if (waiting.length === 0) {
      try {
        if (!appendChecked([record]))
          return Promise.reject(
            new GatewayError('GW_PRIVACY_GUARD', 'spool: a record was withheld by the privacy guard'),
          );
        opts.events?.spooled?.(1);
        scheduleDrain(0);
        return Promise.resolve();
      } catch (err) {
        if (!(err instanceof GatewayError && err.code === 'GW_SPOOL_FULL')) return Promise.reject(err);
        setFull(true);
      }
    }
    scheduleDrain(0);
    return new Promise((resolve, reject) => waiting.push({ record, resolve, reject }));
  };

  const drainOnce = async (): Promise<void> => {
    while (!closed) {
      const seg = spool.oldest();
      if (seg === undefined) break;
      const records: OutRecord[] = [];
      // Lines that do not open, by reason and tenant: counted and logged once the segment is done.
      const dropped = new Map<
        string,
        { reason: SpoolDropReason; tenant: string | undefined; problem: string; n: number }
      >();
      for (const line of seg.lines) {
        const o = openSpoolLine(opts.keys, line);
        if (o.ok) {
          records.push(o.record);
          continue;
        }
        const k = `${o.reason}\u0000${o.tenant ?? ''}\u0000${o.problem}`;
        const d = dropped.get(k);
        if (d === undefined) dropped.set(k, { reason: o.reason, tenant: o.tenant, problem: o.problem, n: 1 });
        else d.n++;
      }
      // Each write is batched by the primary; all must be acknowledged before the segment goes.
      await withTimeout(Promise.all(records.map((r) => primary.write(r))), opts.sendTimeoutMs * 4);
      spool.remove(seg.name);
      // Counted once the segment is gone: a crash before that reads (and counts) it again.
      for (const d of dropped.values()) {
        if (d.reason === 'shredded')
          log.warn(
            { component: 'delivery', reason: 'shredded', tenant: d.tenant, records: d.n, segment: seg.name },
            'spooled records of a crypto-shredded tenant dropped: its key is destroyed, they cannot be read',
          );
        else
          log.error(
            {
              component: 'delivery',
              stage: 'spool-unreadable',
              tenant: d.tenant,
              problem: d.problem,
              records: d.n,
              segment: seg.name,
            },
            'spooled records dropped: they do not open under their tenant key (altered, or not a record)',
          );
        opts.events?.dropped?.(d.reason, d.tenant, d.n);
      }
      opts.events?.drained?.(records.length);
      admitWaiting();
    }
    if (waiting.length === 0 && spool.isEmpty()) setMode('direct');
  };

  function scheduleDrain(delayMs: number): void {
    if (draining !== undefined || retryTimer !== undefined || closed) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      draining = drainOnce()
        .catch((err: unknown) => {
          // The first failure says why; the rest of the outage is counted (see the line that ends it).
          if (drainFailures++ === 0)
            log.warn(
              { component: 'delivery', code: (err as { code?: string }).code, spoolRecords: spool.records() },
              'spool drain failed; retrying every delivery.retryIntervalMs until the sink takes it',
            );
          draining = undefined;
          scheduleDrain(opts.retryIntervalMs);
        })
        .finally(() => {
          draining = undefined;
          if (!spool.isEmpty() || waiting.length > 0) scheduleDrain(opts.retryIntervalMs);
        });
    }, delayMs);
  }

  const settle = (f: Flight): boolean => {
    if (f.settled) return false;
    f.settled = true;
    inFlight--;
    // Acknowledgements come in order: the front moves on, and nothing settled stays referenced for long.
    if (f === flights[oldest]) trimFlights();
    return true;
  };

  /** The direct send failed or took too long: the record goes to the spool (once: a late answer is ignored). */
  const divert = (f: Flight, code: string | undefined): void => {
    if (!settle(f)) return;
    // One line for the switch, none per record (records_spooled_total counts them).
    setMode('spooling', code);
    toSpool(f.record).then(f.resolve, f.reject);
  };

  /** Drops settled flights from the front; true while an unsettled one remains. */
  function trimFlights(): boolean {
    while (oldest < flights.length && flights[oldest]!.settled) oldest++;
    if (oldest === flights.length) {
      flights = [];
      oldest = 0;
      return false;
    }
    if (oldest > 1024 && oldest * 2 > flights.length) {
      flights = flights.slice(oldest);
      oldest = 0;
    }
    return true;
  }

  const armFlightTimer = (): void => {
    if (flightTimer !== undefined || !trimFlights()) return;
    flightTimer = setTimeout(expireFlights, Math.max(0, flights[oldest]!.deadline - Date.now()));
  };

  function expireFlights(): void {
    flightTimer = undefined;
    const now = Date.now();
    while (trimFlights() && flights[oldest]!.deadline <= now) divert(flights[oldest]!, 'GW_SINK_UNAVAILABLE');
    armFlightTimer();
  }

  // One class per sink: its methods see this sink's state, and a flight carries no closures of its own.
  class DirectFlight implements Flight {
    settled = false;
    constructor(
      readonly record: OutRecord,
      readonly deadline: number,
      readonly resolve: () => void,
      readonly reject: (err: unknown) => void,
    ) {}
    ack(): void {
      if (settle(this)) this.resolve();
    }
    nack(err: unknown): void {
      divert(this, (err as { code?: string }).code);
    }
  }

  const submit: (record: OutRecord, f: Flight) => void =
    primary.submit?.bind(primary) ??
    ((record, f) =>
      primary.write(record).then(
        () => f.ack(),
        (err: unknown) => f.nack(err),
      ));

  const sendDirect = (record: OutRecord): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const f = new DirectFlight(record, Date.now() + opts.sendTimeoutMs, resolve, reject);
      flights.push(f);
      inFlight++;
      if (flightTimer === undefined) armFlightTimer();
      submit(record, f);
    });

  if (mode === 'spooling') {
    log.info(
      { component: 'delivery', spoolRecords: spool.records() },
      'spool from an earlier run: draining it before new records',
    );
    scheduleDrain(0);
  }

  return {
    name: 'delivery',
    write(record) {
      if (closed) return Promise.reject(new GatewayError('GW_SINK_CLOSED', 'delivery: closed'));
      return mode === 'spooling' ? toSpool(record) : sendDirect(record);
    },
    mode: () => mode,
    spoolFull: () => full,
    async drained(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!spool.isEmpty() || waiting.length > 0 || draining !== undefined) {
        if (Date.now() > deadline)
          throw new GatewayError(
            'GW_SINK_UNAVAILABLE',
            `spool not drained within ${timeoutMs} ms (${spool.records()} records remain on disk)`,
          );
        scheduleDrain(0);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      const deadline = Date.now() + opts.closeDeadlineMs;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      clearTimeout(flightTimer);
      // Not acknowledged in time: spooled, and re-sent on the next start (Kafka may have it too: same id).
      for (const f of flights.slice(oldest)) {
        if (!settle(f)) continue;
        forceToSpool(f.record).then(f.resolve, f.reject);
      }
      if (draining !== undefined)
        await Promise.race([draining, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())))]);
      // Anything still held back goes to disk, however full: shutdown never drops a record.
      for (const w of waiting.splice(0)) forceToSpool(w.record).then(w.resolve, w.reject);
      spool.close();
      // A stalled Kafka must not hold shutdown past the deadline: what it has not acknowledged is on disk.
      await Promise.race([
        primary.close().catch(() => undefined),
        new Promise((r) => setTimeout(r, Math.max(100, deadline - Date.now())).unref()),
      ]);
    },
  };
}
