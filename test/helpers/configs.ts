// Configurations shared by end-to-end tests.
import { parseConfig, type LoadedConfig } from '../../src/config/load.js';

export const KEY_ACME = 'a1'.repeat(32);
export const KEY_GLOBEX = 'b2'.repeat(32);

/** The lab PBX's two tenants, matched by accountcode; unmatched calls go to acme, which owns the DIDs. */
export function twoTenantConfig(): LoadedConfig {
  return parseConfig(
    {
      tenants: [
        { id: 'acme', keyId: 'acme-1', keyEnv: 'K_ACME', defaultRegion: 'GB', fallbackRegions: ['US'], match: { accountCodes: ['acme'] } },
        { id: 'globex', keyId: 'globex-1', keyEnv: 'K_GLOBEX', defaultRegion: 'US', fallbackRegions: ['GB'], match: { accountCodes: ['globex'] } },
      ],
      defaultTenant: 'acme',
    },
    { K_ACME: KEY_ACME, K_GLOBEX: KEY_GLOBEX },
    '(test)',
  );
}
