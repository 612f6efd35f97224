// The consent decision for one recording: a pure function of the recorded
// channel's state and a registry snapshot. Rule: a recording is kept only if
// every internal party of the call has consent. Internal parties are the
// recorded channel's own extension (outbound and internal calls) and every
// extension the call is for (TARGET_EXT / __TARGET_EXT / TARGET, the Dial
// targets, an extension-shaped dialled Exten). Inbound calls record on the
// trunk channel, so only the called extension counts; outbound calls reach no
// extension, so only the caller's counts. Anything unknown: blocked.

/** Read-only view of the consent registry at one instant. */
export interface ConsentView {
  /** false when the store could not be read: everything is off. */
  readonly readable: boolean;
  isOn(tenant: string, extension: string): boolean;
}

/** What the decision needs from the assembler's channel state (raw values, memory only). */
export interface RecordedChannel {
  readonly channel: string;
  readonly dialled: string;
  readonly consentTargets: ReadonlySet<string>;
}

export type BlockReason = 'no-consent' | 'no-target' | 'unknown-tenant' | 'store-unreadable';

export type ConsentDecision =
  | { readonly verdict: 'kept'; readonly parties: readonly string[] }
  | {
      readonly verdict: 'blocked';
      readonly reason: BlockReason;
      readonly parties: readonly string[];
      readonly withoutConsent: readonly string[];
    };

// Channel names of phones are `<tech>/<peer>-<seq>` (Local: `Local/<exten>@<ctx>-<seq>;n`).
const CHANNEL = /^(?:SIP|PJSIP|IAX2|DAHDI|Local)\/([^-@;/]+)(?:[-@;].*)?$/i;

/** The extension a value names: a short digit string, or a channel whose peer is one. */
export function extensionOf(value: string, maxDigits: number): string | undefined {
  const digits = new RegExp(`^[0-9]{1,${Math.max(1, Math.min(maxDigits, 6))}}$`);
  if (digits.test(value)) return value;
  const m = CHANNEL.exec(value);
  return m !== null && digits.test(m[1]!) ? m[1] : undefined;
}

/** Every internal extension taking part in the recorded call, sorted. */
export function recordingParties(ch: RecordedChannel, maxDigits: number): string[] {
  const parties = new Set<string>();
  for (const v of [ch.channel, ch.dialled, ...ch.consentTargets]) {
    const ext = extensionOf(v, maxDigits);
    if (ext !== undefined) parties.add(ext);
  }
  return [...parties].sort();
}

export function decideRecording(
  tenant: string | undefined,
  parties: readonly string[],
  consent: ConsentView,
): ConsentDecision {
  if (!consent.readable) return { verdict: 'blocked', reason: 'store-unreadable', parties, withoutConsent: parties };
  if (tenant === undefined) return { verdict: 'blocked', reason: 'unknown-tenant', parties, withoutConsent: parties };
  if (parties.length === 0) return { verdict: 'blocked', reason: 'no-target', parties, withoutConsent: [] };
  const withoutConsent = parties.filter((p) => !consent.isOn(tenant, p));
  return withoutConsent.length === 0
    ? { verdict: 'kept', parties }
    : { verdict: 'blocked', reason: 'no-consent', parties, withoutConsent };
}
