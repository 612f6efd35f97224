// The live feed's fan-out: frames are published per tenant and sent to that
// tenant's WebSocket clients only. A client that does not read cannot grow the
// gateway's memory: once its socket holds more than maxBufferedBytes unsent,
// it gets one notice frame and is closed (and destroyed if it does not close).
import type { WebSocket } from 'ws';
import { defaultEgress, type Egress } from '../egress/egress.js';

/** What may go into a frame: built by our code from sanitized data, never from AMI values. */
/** The gateway's link to the PBX, as the page is told: up, or down with a reason code. */
export interface PbxLinkStatus {
  readonly up: boolean;
  readonly reason: string | null;
}

export type LiveFrame =
  | { readonly type: 'hello'; readonly tenant: string; readonly at: string; readonly pbx?: PbxLinkStatus }
  | { readonly type: 'status'; readonly pbx: PbxLinkStatus; readonly at: string }
  | { readonly type: 'call.started' | 'call.answered' | 'call.ended'; readonly callId: string; readonly at: string }
  | {
      readonly type: 'recording';
      readonly callId: string | null;
      readonly outcome: 'kept' | 'blocked';
      readonly kind: 'mixmonitor' | 'monitor';
      readonly reason?: string;
      readonly at: string;
    }
  | { readonly type: 'record'; readonly record: unknown }
  | {
      readonly type: 'call';
      readonly record: unknown;
      readonly recordingReason?: string | null;
      readonly extensions?: readonly string[];
    }
  | {
      readonly type: 'consent';
      readonly extension: string;
      readonly recording: boolean;
      readonly changedBy: string;
      readonly changedAt: string;
    }
  | { readonly type: 'dropped'; readonly reason: 'slow-consumer'; readonly at: string };

export interface LiveFeed {
  publish(tenant: string, frame: LiveFrame): void;
  /** One frame to every tenant's clients (the PBX link's status). */
  broadcast(frame: LiveFrame): void;
  /** Subscribes an authenticated socket to one tenant's frames; the hello frame says how the PBX link is. */
  attach(ws: WebSocket, tenant: string, pbx?: PbxLinkStatus): void;
  clients(): number;
  stats(): { readonly sent: number; readonly dropped: number };
  close(): void;
}

export interface LiveFeedOptions {
  readonly maxBufferedBytes: number;
  /** How long a dropped client gets to close before it is destroyed. */
  readonly closeGraceMs?: number;
  /** The door frames pass (default: the process's egress). */
  readonly egress?: Egress;
}

export const WS_CLOSE_SLOW = 4008;

export function createLiveFeed(opts: LiveFeedOptions): LiveFeed {
  const byTenant = new Map<string, Set<WebSocket>>();
  let sent = 0;
  let dropped = 0;

  function drop(ws: WebSocket, set: Set<WebSocket>): void {
    set.delete(ws);
    dropped++;
    ws.send(
      JSON.stringify({ type: 'dropped', reason: 'slow-consumer', at: new Date().toISOString() } satisfies LiveFrame),
    );
    ws.close(WS_CLOSE_SLOW, 'slow consumer');
    setTimeout(() => ws.terminate(), opts.closeGraceMs ?? 2000).unref();
  }

  const feed: LiveFeed = {
    broadcast(frame) {
      for (const tenant of byTenant.keys()) feed.publish(tenant, frame);
    },
    publish(tenant, frame) {
      const set = byTenant.get(tenant);
      if (set === undefined || set.size === 0) return;
      const data = JSON.stringify(frame);
      // The one door out: a frame holding a raw value of a call is never sent.
      if (!(opts.egress ?? defaultEgress()).pass('ws', data, { object: frame, tenant })) return;
      for (const ws of [...set]) {
        if (ws.readyState !== ws.OPEN) continue;
        if (ws.bufferedAmount + data.length > opts.maxBufferedBytes) {
          drop(ws, set);
          continue;
        }
        ws.send(data);
        sent++;
      }
    },
    attach(ws, tenant, pbx) {
      let set = byTenant.get(tenant);
      if (set === undefined) byTenant.set(tenant, (set = new Set()));
      const s = set;
      s.add(ws);
      ws.on('close', () => s.delete(ws));
      const hello: LiveFrame = { type: 'hello', tenant, at: new Date().toISOString(), ...(pbx ? { pbx } : {}) };
      ws.send(JSON.stringify(hello));
    },
    clients: () => [...byTenant.values()].reduce((n, s) => n + s.size, 0),
    stats: () => ({ sent, dropped }),
    close() {
      for (const set of byTenant.values()) for (const ws of set) ws.terminate();
      byTenant.clear();
    },
  };
  return feed;
}
