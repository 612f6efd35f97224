// The consent decision for one recording: a pure function of who takes part
// and a registry snapshot. Rule: a recording is kept only if every internal
// party of its call has consent in the call's tenant. Who the parties are is
// the call model's answer (assemble/call-model.ts recordingParties: the one
// party classifier over the channels around the recorded one, the call's
// targets), and which tenant judges is the call model's one resolution:
// nothing here reads a channel name or counts digits. Anything unknown:
// blocked.
import type { RecordingParties } from '../assemble/call-model.js';

/** Read-only view of the consent registry at one instant. */
export interface ConsentView {
  /** false when the store could not be read: everything is off. */
  readonly readable: boolean;
  isOn(tenant: string, extension: string): boolean;
}

export type BlockReason =
  | 'no-consent'
  | 'no-target'
  | 'unknown-tenant'
  | 'store-unreadable'
  /** A phone channel takes part that the classifier could not name as an extension: it cannot have consented. */
  | 'unnamed-party'
  /** More channels or targets than the bounds keep: not every party is known. */
  | 'too-many-parties';

export type ConsentDecision =
  | { readonly verdict: 'kept'; readonly parties: readonly string[] }
  | {
      readonly verdict: 'blocked';
      readonly reason: BlockReason;
      readonly parties: readonly string[];
      readonly withoutConsent: readonly string[];
    };

/**
 * Decides a recording. `judged` holds extensions already found consenting for
 * this recording (an incremental re-evaluation asks only about the others);
 * pass nothing after a consent change.
 */
export function decideRecording(
  tenant: string | undefined,
  parties: RecordingParties,
  consent: ConsentView,
  judged?: ReadonlySet<string>,
): ConsentDecision {
  const all = parties.extensions;
  if (!consent.readable) return { verdict: 'blocked', reason: 'store-unreadable', parties: all, withoutConsent: all };
  if (tenant === undefined) return { verdict: 'blocked', reason: 'unknown-tenant', parties: all, withoutConsent: all };
  if (!parties.complete) return { verdict: 'blocked', reason: 'too-many-parties', parties: all, withoutConsent: [] };
  if (parties.unnamed > 0) return { verdict: 'blocked', reason: 'unnamed-party', parties: all, withoutConsent: [] };
  if (all.length === 0) return { verdict: 'blocked', reason: 'no-target', parties: all, withoutConsent: [] };
  const withoutConsent = all.filter((p) => judged?.has(p) !== true && !consent.isOn(tenant, p));
  return withoutConsent.length === 0
    ? { verdict: 'kept', parties: all }
    : { verdict: 'blocked', reason: 'no-consent', parties: all, withoutConsent };
}
