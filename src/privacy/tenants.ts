// Which tenant a CDR belongs to, and with which key and number policy it is
// cleaned. First match wins: the CDR's accountcode (what Asterisk bills), then
// the channel's tenantid, then the configured default tenant. No match: the
// record is withheld. Accountcode comes first because a channel can carry
// another tenant's tenantid (a globex phone calling acme's queue is tagged
// acme by the queue's dialplan), and its caller is still globex's subscriber.
import type { NumberPolicy } from './numbers.js';
import type { TenantKey } from './pseudonymise.js';

export interface TenantSpec {
  readonly id: string;
  /** null when the key material is missing: every record of this tenant is withheld. */
  readonly key: TenantKey | null;
  readonly numbers: NumberPolicy;
  readonly match: { readonly tenantIds: readonly string[]; readonly accountCodes: readonly string[] };
}

export type TenantResolver = (tenantHint: string, accountCode: string) => TenantSpec | undefined;

export function createTenantResolver(specs: readonly TenantSpec[], defaultTenant?: string): TenantResolver {
  const byTenantId = new Map<string, TenantSpec>();
  const byAccount = new Map<string, TenantSpec>();
  for (const spec of specs) {
    for (const id of [spec.id, ...spec.match.tenantIds]) if (!byTenantId.has(id)) byTenantId.set(id, spec);
    for (const code of spec.match.accountCodes) if (!byAccount.has(code)) byAccount.set(code, spec);
  }
  const fallback = defaultTenant === undefined ? undefined : specs.find((s) => s.id === defaultTenant);
  return (tenantHint, accountCode) =>
    (accountCode ? byAccount.get(accountCode) : undefined) ?? (tenantHint ? byTenantId.get(tenantHint) : undefined) ?? fallback;
}
