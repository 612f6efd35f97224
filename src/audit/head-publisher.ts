// Publishes the audit chain's head (seq, MAC, instance, time) off the box, to
// `<prefix>.audit`, after every `everyEntries` new entries and at least every
// `everyMs` while entries were added: whoever rewrites or cuts the local log
// cannot reach what Kafka already holds. Several gateways share the topic,
// each keyed by its instance id. A failed publish is retried at the next turn
// (the head only moves forward); it never blocks an audit append.
import { defaultEgress } from '../egress/egress.js';
import type { AuditHead, AuditLog } from './audit-log.js';

export interface HeadPublisherOptions {
  readonly audit: Pick<AuditLog, 'head' | 'onAppend'>;
  readonly instance: string;
  readonly everyEntries: number;
  readonly everyMs: number;
  /** Sends one head (key: the instance id); resolves once Kafka acknowledged it. */
  readonly send: (key: string, value: string) => Promise<void>;
  readonly onError?: (err: unknown) => void;
  readonly now?: () => Date;
}

export interface HeadPublisher {
  /** Publishes the current head now, if it moved since the last publish (shutdown calls it). */
  flush(): Promise<void>;
  stop(): Promise<void>;
  /** The last head Kafka acknowledged. */
  published(): AuditHead | undefined;
}

/** The value a head is published as (and parsed back by `audit verify`). */
export function encodeHead(h: AuditHead): string {
  return JSON.stringify({ instance: h.instance, seq: h.seq, mac: h.mac, at: h.at });
}

export function parseHead(text: string): AuditHead | undefined {
  try {
    const h = JSON.parse(text) as Partial<AuditHead>;
    if (
      typeof h.instance === 'string' &&
      Number.isInteger(h.seq) &&
      typeof h.mac === 'string' &&
      /^[0-9a-f]{64}$/.test(h.mac) &&
      typeof h.at === 'string'
    )
      return h as AuditHead;
  } catch {
    // not a head
  }
  return undefined;
}

export function startHeadPublisher(o: HeadPublisherOptions): HeadPublisher {
  const now = o.now ?? (() => new Date());
  let sinceLast = 0;
  let last: AuditHead | undefined;
  let inFlight: Promise<void> | undefined;
  let stopped = false;

  const publish = (): Promise<void> => {
    if (inFlight !== undefined) return inFlight;
    const h = o.audit.head();
    if (h === undefined || (last !== undefined && last.seq >= h.seq)) return Promise.resolve();
    const head: AuditHead = { instance: o.instance, seq: h.seq, mac: h.mac, at: now().toISOString() };
    const value = encodeHead(head);
    // Ids and a MAC only; checked at the door like every output.
    if (!defaultEgress().pass('kafka', value, { object: head })) return Promise.resolve();
    sinceLast = 0;
    inFlight = o
      .send(o.instance, value)
      .then(() => {
        last = head;
      })
      .catch((err: unknown) => {
        o.onError?.(err);
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  o.audit.onAppend(() => {
    if (stopped) return;
    if (++sinceLast >= o.everyEntries) void publish();
  });
  const timer = setInterval(() => void publish(), o.everyMs);
  timer.unref();
  return {
    flush: async () => {
      await inFlight;
      await publish();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
      await publish();
    },
    published: () => last,
  };
}
