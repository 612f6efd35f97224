// Keyed pseudonyms. A plain hash of a phone number is not a pseudonym (the
// number space is small enough to enumerate), so every token is an HMAC under
// a per-tenant secret, with the tenant and the kind of value in the message
// so tokens never collide across tenants or across kinds.
import { createHmac } from 'node:crypto';

export interface TenantKey {
  readonly keyId: string;
  readonly secret: Buffer;
}

/** Default token length in bytes before base64url: 16 bytes = 128 bits, 22 characters. */
export const TOKEN_BYTES = 16;
/** Rules may shorten tokens, never below 80 bits. */
export const MIN_TOKEN_BYTES = 10;

export function pseudonym(
  tenant: string,
  key: TenantKey,
  domain: string,
  canonical: string,
  bytes = TOKEN_BYTES,
): string {
  const mac = createHmac('sha256', key.secret);
  mac.update(tenant);
  mac.update('\u0000');
  mac.update(domain);
  mac.update('\u0000');
  mac.update(canonical);
  return mac
    .digest()
    .subarray(0, Math.max(MIN_TOKEN_BYTES, Math.min(32, bytes)))
    .toString('base64url');
}
