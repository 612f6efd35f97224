// Configurations shared by end-to-end tests.
import { TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from './audit-key.js';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseConfig, type LoadedConfig } from '../../src/config/load.js';

export const KEY_ACME = 'a10f'.repeat(16);
export const KEY_GLOBEX = 'b20f'.repeat(16);
export const ID_KEY_ACME = 'a70f'.repeat(16);
export const ID_KEY_GLOBEX = 'b70f'.repeat(16);

/**
 * The lab PBX's two tenants as config settings, matched by accountcode;
 * unmatched calls go to acme, which owns the DIDs. Keys from K_ACME / K_GLOBEX.
 */
export const TWO_TENANTS = {
  tenants: [
    {
      id: 'acme',
      keyId: 'acme-1',
      keyEnv: 'K_ACME',
      defaultRegion: 'GB',
      fallbackRegions: ['US'],
      match: { accountCodes: ['acme'] },
    },
    {
      id: 'globex',
      keyId: 'globex-1',
      keyEnv: 'K_GLOBEX',
      defaultRegion: 'US',
      fallbackRegions: ['GB'],
      match: { accountCodes: ['globex'] },
    },
  ],
  defaultTenant: 'acme',
};

/** The lab PBX's two tenants (TWO_TENANTS), loaded. */
export function twoTenantConfig(): LoadedConfig {
  return parseConfig(
    {
      ...TWO_TENANTS,
    },
    {
      K_ACME: KEY_ACME,
      K_GLOBEX: KEY_GLOBEX,
      CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX,
      CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX,
    },
    '(test)',
  );
}

/** The repository's example rules folder (rules/): acme, globex, northwind. */
export const RULES_DIR = resolve(import.meta.dirname, '..', '..', 'rules');

/** A keys file for the example rules; acme has an old and a new key, northwind's comes from the environment. */
export function writeKeysFile(dir: string): string {
  const path = join(dir, 'keys.yaml');
  writeFileSync(
    path,
    [
      'keySets:',
      '  acme:',
      `    - { kid: acme-2025-11, secret: "${'a00f'.repeat(16)}", activeFrom: "2020-01-01T00:00:00Z" }`,
      `    - { kid: acme-2026-11, secret: "${KEY_ACME}", activeFrom: "2021-01-01T00:00:00Z" }`,
      '  globex:',
      `    - { kid: globex-2026-11, secret: "${KEY_GLOBEX}", activeFrom: "2021-01-01T00:00:00Z" }`,
      '  northwind:',
      '    - { kid: northwind-1, secretEnv: K_NORTHWIND, activeFrom: "2021-01-01T00:00:00Z" }',
      'idKeys:',
      `  acme: { secret: "${ID_KEY_ACME}" }`,
      `  globex: { secret: "${ID_KEY_GLOBEX}" }`,
      `  northwind: { secret: "${'c40f'.repeat(16)}" }`,
      `auditKey: { secret: "${TEST_AUDIT_KEY_HEX}" }`,
      `storageKey: { secret: "${TEST_STORAGE_KEY_HEX}" }`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}

/** The example rules folder with its keys: what an operator deploys. */
export function rulesConfig(
  dir: string,
  rulesDir: string = RULES_DIR,
  extra: Record<string, unknown> = {},
): LoadedConfig {
  return parseConfig(
    { rules: { dir: rulesDir, keysFile: writeKeysFile(dir) }, ...extra },
    { K_NORTHWIND: 'c30f'.repeat(16) },
    join(dir, 'config.yaml'),
  );
}
