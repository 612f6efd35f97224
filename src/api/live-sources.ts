// What feeds the live WebSocket stream, per tenant: published (sanitized)
// records, call lifecycle frames from channel events, recording outcomes and
// consent changes. Every frame is built here from sanitized or gateway-made
// values; no AMI value is copied into one.
import type { ConsentRegistry } from '../consent/registry.js';
import type { ConsentEnforcer } from '../consent/enforcer.js';
import type { Pipeline } from '../pipeline.js';
import type { AmiClient } from '../source/ami-client.js';
import { createLiveCallTracker, type LiveCallTrackerOptions } from './live-calls.js';
import type { LiveFeed } from './live-feed.js';

export interface LiveSources {
  readonly client: Pick<AmiClient, 'onMessage'>;
  readonly pipeline: Pick<Pipeline, 'onPublished'>;
  readonly enforcer?: Pick<ConsentEnforcer, 'onOutcome'>;
  readonly registry?: Pick<ConsentRegistry, 'onChange'>;
  readonly calls: LiveCallTrackerOptions;
  readonly now?: () => Date;
}

export function connectLiveFeed(feed: LiveFeed, src: LiveSources): void {
  const now = src.now ?? (() => new Date());
  const tracker = createLiveCallTracker(src.calls);
  src.client.onMessage((msg) => {
    for (const { tenant, frame } of tracker.handle(msg)) feed.publish(tenant, frame);
  });
  src.pipeline.onPublished((record) => feed.publish(record.tenant, { type: 'record', record }));
  src.enforcer?.onOutcome((o) => {
    if (o.tenant !== null)
      feed.publish(o.tenant, {
        type: 'recording',
        callId: o.callId,
        outcome: o.outcome,
        kind: o.kind,
        at: now().toISOString(),
      });
  });
  src.registry?.onChange((c) =>
    feed.publish(c.tenant, {
      type: 'consent',
      extension: c.extension,
      recording: c.recording,
      changedBy: c.changedBy,
      changedAt: c.changedAt,
    }),
  );
}
