// What feeds the live WebSocket stream, per tenant: the call model's calls
// (started, answered, ended) and published records after privacy, recording
// outcomes and consent changes. Every frame is built from sanitized or
// gateway-made values; api/ never sees raw AMI.
import type { ConsentRegistry } from '../consent/registry.js';
import type { ConsentEnforcer } from '../consent/enforcer.js';
import type { Pipeline } from '../pipeline.js';
import type { CallLog } from './call-log.js';
import type { LiveFeed, PbxLinkStatus } from './live-feed.js';

export interface LiveSources {
  readonly pipeline: Pick<Pipeline, 'onPublished' | 'onCallPublished' | 'onLive'>;
  readonly enforcer?: Pick<ConsentEnforcer, 'onOutcome'>;
  readonly registry?: Pick<ConsentRegistry, 'onChange'>;
  /** The console's recent calls and counts, fed with the same call records and outcomes. */
  readonly calls?: Pick<CallLog, 'add' | 'noteRecording'>;
  /** The PBX link: every change goes to every client, so the page never shows live while it is down. */
  readonly pbx?: { onChange(fn: (s: PbxLinkStatus) => void): void };
  readonly now?: () => Date;
}

export function connectLiveFeed(feed: LiveFeed, src: LiveSources): void {
  const now = src.now ?? (() => new Date());
  src.pipeline.onLive((e) => feed.publish(e.tenant, { type: e.type, callId: e.callId, at: now().toISOString() }));
  src.pipeline.onPublished((record) => feed.publish(record.tenant, { type: 'record', record }));
  src.pipeline.onCallPublished((record) => {
    const entry = src.calls?.add(record);
    feed.publish(
      record.tenant,
      entry === undefined
        ? { type: 'call', record }
        : { type: 'call', record, recordingReason: entry.recordingReason, extensions: entry.extensions },
    );
  });
  src.enforcer?.onOutcome((o) => {
    src.calls?.noteRecording(o);
    if (o.tenant !== null)
      feed.publish(o.tenant, {
        type: 'recording',
        callId: o.callId,
        outcome: o.outcome,
        kind: o.kind,
        ...(o.reason === undefined ? {} : { reason: o.reason }),
        at: now().toISOString(),
      });
  });
  src.pbx?.onChange((pbx) => feed.broadcast({ type: 'status', pbx, at: now().toISOString() }));
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
