// The audit key of a loaded configuration, or a start-up error that says
// where to put one. There is no fallback: a key derived from anything on the
// box would let whoever can write the box forge the chain.
import type { LoadedConfig } from '../config/load.js';
import { GatewayError } from '../errors.js';

export function auditKeyOf(loaded: Pick<LoadedConfig, 'gatewayKeys' | 'rulesSource'>): Buffer {
  const key = loaded.gatewayKeys?.auditKey;
  if (key !== null && key !== undefined) return key;
  const file = loaded.rulesSource?.keysFile;
  throw new GatewayError(
    'GW_AUDIT_KEY',
    `no audit key: the audit log is chained with a keyed MAC — fix: ${
      file === undefined
        ? 'set CALLVEIL_AUDIT_KEY (64 hex characters; `callveil keys generate audit` makes one)'
        : `add auditKey to the keys file ${file} (\`callveil keys generate audit --keys-file ${file}\`), or set CALLVEIL_AUDIT_KEY`
    }`,
  );
}
