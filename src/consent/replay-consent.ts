// The consent registry of a replay: read from a file in the consent store's
// own format (`consent.json`, e.g. a copy of a gateway's), or the embedded
// default where nothing consents. Read-only: a replay changes no consent and
// writes no audit log.
import { readFileSync } from 'node:fs';
import { GatewayError } from '../errors.js';
import { createConsentRegistry, type ConsentRegistry } from './registry.js';
import type { StoreCipher } from '../store-cipher.js';
import { decodeConsentText, parseConsentFile, readOnlyConsentStore, type ConsentData } from './store.js';

/** `cipher`: opens a copy of a gateway's encrypted consent.json (the configuration's storage key); plaintext files read as they are. */
export function replayConsentRegistry(
  file: string | undefined,
  tenants: readonly string[],
  cipher?: StoreCipher,
): ConsentRegistry {
  let data: ConsentData = {};
  if (file !== undefined) {
    let json: unknown;
    try {
      const text = readFileSync(file, 'utf8');
      const opened = decodeConsentText(text, text.startsWith('cv1.') ? cipher : undefined);
      if (!opened.ok) throw new GatewayError('GW_USAGE', `--consent ${file}: ${opened.problem}`);
      json = JSON.parse(opened.text);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new GatewayError(
        'GW_USAGE',
        `--consent ${file}: ${code === undefined ? 'not valid JSON' : `cannot read (${code})`}`,
      );
    }
    const parsed = parseConsentFile(json);
    if (!parsed.ok)
      throw new GatewayError(
        'GW_USAGE',
        `--consent ${file}: expected a consent store file (consent.json of a gateway, or {"version":1,"tenants":{"<tenant>":{"<extension>":{"recording":true,"changedBy":"...","changedAt":"<ISO time>"}}}}): ${parsed.problem}`,
      );
    data = parsed.data;
  }
  return createConsentRegistry({
    store: readOnlyConsentStore(file ?? '(embedded: nothing consents)', data),
    audit: { append: (e) => Promise.resolve(e as never) },
    tenants,
  });
}
