// What feeds the live WebSocket stream, per tenant: the call model's calls
// (started, answered, ended) and published records after privacy, recording
// outcomes and consent changes. Every frame is built from sanitized or
// gateway-made values; api/ never sees raw AMI.
import type { ConsentRegistry } from '../consent/registry.js';
import type { ConsentEnforcer } from '../consent/enforcer.js';
import type { Pipeline } from '../pipeline.js';
import type { LiveFeed } from './live-feed.js';

export interface LiveSources {
  readonly pipeline: Pick<Pipeline, 'onPublished' | 'onCallPublished' | 'onLive'>;
  readonly enforcer?: Pick<ConsentEnforcer, 'onOutcome'>;
  readonly registry?: Pick<ConsentRegistry, 'onChange'>;
  readonly now?: () => Date;
}

export function connectLiveFeed(feed: LiveFeed, src: LiveSources): void {
  const now = src.now ?? (() => new Date());
  src.pipeline.onLive((e) => feed.publish(e.tenant, { type: e.type, callId: e.callId, at: now().toISOString() }));
  src.pipeline.onPublished((record) => feed.publish(record.tenant, { type: 'record', record }));
  src.pipeline.onCallPublished((record) => feed.publish(record.tenant, { type: 'call', record }));
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
