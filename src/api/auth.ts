// API credentials: bearer tokens, stored only as SHA-256 hashes (a token is
// 32+ random bytes, so a fast hash is enough: there is nothing to guess), and
// compared in constant time against every configured hash.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ApiToken } from '../config/schema.js';
import { GatewayError } from '../errors.js';

export type Principal =
  | { readonly role: 'operator'; readonly tokenId: string }
  | { readonly role: 'tenant'; readonly tenant: string; readonly tokenId: string };

export type Authenticate = (token: string | undefined) => Principal | undefined;

export const MIN_TOKEN_CHARS = 32;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Who did it, for audit entries and consent records. */
export function actorOf(p: Principal): string {
  return p.role === 'operator' ? `operator:${p.tokenId}` : `tenant:${p.tenant}:${p.tokenId}`;
}

export function mayAccess(p: Principal, tenant: string): boolean {
  return p.role === 'operator' || p.tenant === tenant;
}

export function createAuthenticator(tokens: ReadonlyArray<z.infer<typeof ApiToken>>): Authenticate {
  const entries = tokens.map((t) => ({ hash: Buffer.from(t.sha256, 'hex'), principal: toPrincipal(t) }));
  return (token) => {
    if (token === undefined || token.length < MIN_TOKEN_CHARS || token.length > 512) return undefined;
    const presented = createHash('sha256').update(token, 'utf8').digest();
    let found: Principal | undefined;
    // No early exit: the time taken does not say which entry matched.
    for (const e of entries) if (timingSafeEqual(presented, e.hash) && found === undefined) found = e.principal;
    return found;
  };
}

function toPrincipal(t: z.infer<typeof ApiToken>): Principal {
  return t.role === 'operator'
    ? { role: 'operator', tokenId: t.id }
    : { role: 'tenant', tenant: t.tenant!, tokenId: t.id };
}

/** Token hashes from the config plus, when set, the tokens file (a JSON array of the same entries). */
export function loadApiTokens(
  config: { tokens: ReadonlyArray<z.infer<typeof ApiToken>>; tokensFile?: string | undefined },
  tenantIds: readonly string[],
): Array<z.infer<typeof ApiToken>> {
  const all = [...config.tokens];
  if (config.tokensFile !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(config.tokensFile, 'utf8'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new GatewayError(
        'GW_CONFIG_INVALID',
        `invalid configuration:\n  ${config.tokensFile}: api.tokensFile: expected a readable JSON file${code ? ` (${code})` : ''}`,
      );
    }
    const parsed = z.array(ApiToken).safeParse(json);
    if (!parsed.success) {
      const lines = parsed.error.issues.map(
        (i) => `  ${config.tokensFile}: ${i.path.join('.')}: expected ${i.message}`,
      );
      throw new GatewayError('GW_CONFIG_INVALID', `invalid configuration:\n${lines.join('\n')}`);
    }
    all.push(...parsed.data);
  }
  const known = new Set(tenantIds);
  const ids = new Set<string>();
  all.forEach((t, i) => {
    if (t.tenant !== undefined && !known.has(t.tenant))
      throw new GatewayError(
        'GW_CONFIG_INVALID',
        `invalid configuration:\n  api token ${i} (${t.id}): tenant: expected the id of a configured tenant`,
      );
    if (ids.has(t.id))
      throw new GatewayError(
        'GW_CONFIG_INVALID',
        `invalid configuration:\n  api token ${t.id}: id: expected a unique token id`,
      );
    ids.add(t.id);
  });
  return all;
}
