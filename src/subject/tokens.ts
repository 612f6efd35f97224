// A subscriber's pseudonyms under every live key of one tenant: what
// `callveil token` prints, what a suppression entry holds, what export and
// erase look for. Raw number in, tokens out; the number is used in memory
// only, never kept, logged or quoted in an error.
import type { LoadedConfig } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { fpeEncrypt } from '../privacy/methods.js';
import type { PartyKind } from '../privacy/numbers.js';
import { pseudonym } from '../privacy/pseudonymise.js';
import type { TenantPolicy } from '../privacy/tenants.js';
import { readShredTombstone } from './shred-tombstone.js';

export interface KeyTokens {
  readonly keyId: string;
  /**
   * How the number was read: a short digit string is both a possible internal
   * extension and, on a trunk, a subscriber's number (caller `4001`); it has a
   * token for each, so every record of it is found.
   */
  readonly kind: Exclude<PartyKind, 'withheld' | 'none'>;
  /** The keyed token records carry in `token` (method token, and fpe/keep fallbacks). */
  readonly token: string;
  /** The fpe values records carry when a number field uses method fpe (one per keepDigits in use). */
  readonly fpe: readonly string[];
}

export interface SubjectTokens {
  readonly tenant: string;
  readonly kind: Exclude<PartyKind, 'withheld' | 'none'>;
  readonly callingCode: string | null;
  /** One entry per unretired key, newest first (pending keys included: they will sign later). */
  readonly keys: readonly KeyTokens[];
}

/**
 * Tokens of a number under every live key (one entry per key and reading of
 * the number); undefined when it is no party (withheld, or a dialplan control
 * extension).
 */
export function subjectTokens(policy: TenantPolicy, number: string): SubjectTokens | undefined {
  const external = policy.classify(number, 'external');
  if (external.kind === 'withheld' || external.kind === 'none') return undefined;
  const internal = policy.classify(number, 'internal');
  const readings = internal.kind === 'extension' ? [external, internal] : [external];
  const fpeRules = [policy.fields.caller, policy.fields.callee].filter((f) => f.method === 'fpe');
  const keys = policy.keys.keys.flatMap((key) =>
    readings.map((n) => ({
      keyId: key.keyId,
      kind: n.kind as Exclude<PartyKind, 'withheld' | 'none'>,
      token: pseudonym(policy.id, key, n.kind, n.canonical, policy.tokenBytes),
      fpe: [
        ...new Set(
          fpeRules
            .map((f) => fpeEncrypt(policy.id, key, n, f.keepDigits ?? 0))
            .filter((v): v is string => v !== undefined),
        ),
      ],
    })),
  );
  return { tenant: policy.id, kind: external.kind, callingCode: external.callingCode, keys };
}

/**
 * The tenant whose keys a subject lookup needs: known, not crypto-shredded,
 * with at least one live key. Every failure is a clear GatewayError naming the tenant.
 */
export function subjectPolicy(
  loaded: Pick<LoadedConfig, 'privacy' | 'config'>,
  tenant: string | undefined,
): TenantPolicy {
  if (tenant === undefined) throw new GatewayError('GW_USAGE', 'needs --tenant T');
  const shred = readShredTombstone(loaded.config.storage.dir, tenant);
  if (shred !== undefined) {
    throw new GatewayError(
      'GW_TENANT_SHREDDED',
      `tenant "${tenant}" was crypto-shredded on ${shred.shreddedAt}: its keys are destroyed, so its tokens can no longer be computed, matched or revealed`,
    );
  }
  const policy = loaded.privacy.tenants.get(tenant);
  if (policy === undefined)
    throw new GatewayError('GW_PRIVACY_UNKNOWN_TENANT', `no tenant "${tenant}" in the configured rules`);
  if (policy.keys.keys.length === 0) throw new GatewayError('GW_PRIVACY_NO_KEY', `tenant "${tenant}" has no live key`);
  return policy;
}
