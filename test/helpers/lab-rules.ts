// Rules for tests that run the call model without keys: the lab PBXs'
// tenants (by accountcode) and their configured extensions, so the party
// classifier and the tenant resolution have what a deployment would give them.
import { EMPTY_RING } from '../../src/privacy/keys.js';
import { compilePrivacyRules, DEFAULT_FIELDS, type PrivacyRules } from '../../src/privacy/tenants.js';

const NUMBERS = { defaultRegion: 'GB', fallbackRegions: ['US'], extensionMaxDigits: 6 };

export function labRules(defaultTenant: string | undefined = 'acme'): PrivacyRules {
  const tenant = (id: string, accountCodes: string[], extensions: string[]) => ({
    id,
    keys: EMPTY_RING,
    idKey: null,
    numbers: NUMBERS,
    tokenBytes: 16,
    fields: DEFAULT_FIELDS,
    match: { accountCodes, tenantIds: [id], extensions },
  });
  return compilePrivacyRules(
    [
      tenant('acme', ['acme'], ['1001-1005', '8000']),
      tenant('globex', ['globex'], ['1006-1010']),
      tenant('hooli', ['hooli'], ['3101-3105']),
      tenant('vandelay', ['vandelay'], ['3106-3110']),
      tenant('lab11', [], ['2101-2105']),
    ],
    defaultTenant,
  );
}
