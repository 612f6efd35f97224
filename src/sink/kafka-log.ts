// The one way Kafka trouble reaches the log. kafkajs logs every failed
// connection attempt and every retry (760 ERROR lines in a 69 s outage);
// here they are counted and kept at debug, and the operator gets one WARN
// when the link is lost, one INFO when it is back, and each refusal by the
// broker (its error code: INVALID_PARTITIONS, TOPIC_AUTHORIZATION_FAILED...)
// once, until the same request succeeds.
import { logLevel, type logCreator } from 'kafkajs';
import type { Metrics } from '../observability/metrics.js';

export interface KafkaLogTarget {
  debug(o: object, m: string): void;
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
}

export interface KafkaLogOptions {
  readonly log: KafkaLogTarget;
  readonly brokers: readonly string[];
  /** Registers the kafka_* series; pass it from one place only (the gateway's sink). */
  readonly metrics?: Pick<Metrics, 'counter' | 'counterFn' | 'gaugeFn'>;
  readonly now?: () => number;
}

export interface KafkaLog {
  /** For the kafkajs client: its entries are counted, and logged at debug only. */
  readonly logCreator: logCreator;
  /** A request found no broker to answer (connect, timeout, closed): one WARN per outage. */
  lost(code: string): void;
  /** A request was answered: ends an outage with one INFO. */
  up(): void;
  isUp(): boolean;
  /**
   * The broker refused `what` (e.g. `create callveil.acme.erasure`) with
   * `code`: logged at ERROR once per what and code, until `accepted(what)`.
   */
  refused(what: string, code: string, fields: object, message: string): void;
  accepted(what: string): void;
  stats(): KafkaLogStats;
}

export interface KafkaLogStats {
  /** Outages begun (the link was lost). */
  readonly linkLosses: number;
  /** kafkajs ERROR and WARN entries: its per-attempt noise, counted instead of logged. */
  readonly clientErrors: number;
  readonly refusals: number;
}

// kafkajs warns about this on every producer: retries are bounded on purpose (the spool takes over past them).
const EXPECTED_WARNINGS = ['Limiting retries for the idempotent producer'];

export function createKafkaLog(opts: KafkaLogOptions): KafkaLog {
  const now = opts.now ?? Date.now;
  const { log } = opts;
  // Unknown until the first request: a gateway started while Kafka is down reports it as lost, not "back".
  let state: 'unknown' | 'up' | 'down' = 'unknown';
  let downSince = 0;
  let downCode = '';
  let failuresWhileDown = 0;
  const stats = { linkLosses: 0, clientErrors: 0, refusals: 0 };
  const refusedNow = new Map<string, string>();
  const refusals = opts.metrics?.counter(
    'kafka_refusals_total',
    'Requests the Kafka broker refused, by its error code',
    // Codes are the broker's; none is known before the first refusal.
    { code: [] },
  );
  opts.metrics?.gaugeFn('kafka_link_up', 'Kafka answered the last request (1) or did not (0)', () =>
    state === 'down' ? 0 : 1,
  );
  opts.metrics?.counterFn('kafka_link_losses_total', 'Times the Kafka link was lost', () => stats.linkLosses);
  opts.metrics?.counterFn(
    'kafka_client_errors_total',
    "kafkajs's own error and warning entries (connection attempts, retries): counted, logged at debug only",
    () => stats.clientErrors,
  );

  const logCreator: logCreator = () => (entry) => {
    const { message, error, broker } = entry.log as { message?: string; error?: string; broker?: string };
    if (entry.level <= logLevel.WARN && !EXPECTED_WARNINGS.some((w) => message?.startsWith(w))) stats.clientErrors++;
    // kafkajs entries carry broker addresses and error texts, never message payloads.
    log.debug({ component: 'kafka', kafkajs: entry.namespace, broker, error }, message ?? 'kafkajs');
  };

  return {
    logCreator,
    lost(code) {
      if (state === 'down') {
        failuresWhileDown++;
        return;
      }
      const wasUp = state === 'up';
      state = 'down';
      downSince = now();
      downCode = code;
      failuresWhileDown = 1;
      stats.linkLosses++;
      log.warn(
        { component: 'kafka', kafkaCode: code, brokers: opts.brokers.join(',') },
        wasUp
          ? 'kafka link lost: records go to the disk spool until it answers (retries are counted in callveil_kafka_client_errors_total, not logged)'
          : 'kafka not reachable: records go to the disk spool until it answers (retries are counted in callveil_kafka_client_errors_total, not logged)',
      );
    },
    up() {
      if (state === 'down')
        log.info(
          {
            component: 'kafka',
            downMs: now() - downSince,
            failedAttempts: failuresWhileDown,
            kafkaCode: downCode,
            brokers: opts.brokers.join(','),
          },
          'kafka link back',
        );
      state = 'up';
    },
    isUp: () => state !== 'down',
    refused(what, code, fields, message) {
      stats.refusals++;
      refusals?.inc({ code });
      if (refusedNow.get(what) === code) return;
      refusedNow.set(what, code);
      log.error({ component: 'kafka', ...fields, kafkaCode: code }, message);
    },
    accepted(what) {
      refusedNow.delete(what);
    },
    stats: () => ({ ...stats }),
  };
}
