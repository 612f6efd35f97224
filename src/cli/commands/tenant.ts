// `callveil tenant shred`: offboarding a tenant by crypto-shredding.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import { optionalOption, type Registrar } from '../cli-command.js';
import type { ShredOptions } from '../subject-rights.js';
import { configOption, reasonOption, STOPPED, tenantOption } from '../shared-options.js';

export const registerTenant: Registrar = (root, { env, io }) => {
  root
    .group('tenant', 'a tenant as a whole')
    .command('shred')
    .summary("offboarding: destroys a tenant's keys for good")
    .description(
      "Crypto-shreds a tenant: writes a tombstone, destroys the tenant's key material the gateway can reach " +
        '(retired keys too), removes its key set from the keys file and its suppression list; audited. Its ' +
        'tokens can never be linked or revealed again. Repeat the tenant id in --confirm-destroy-keys. Exit 1 if ' +
        "a key outside the gateway's reach is left. " +
        STOPPED,
    )
    .synopsis('--config FILE --tenant TENANT --confirm-destroy-keys TENANT [--reason TEXT]')
    .addOption(configOption())
    .addOption(tenantOption())
    .addOption(
      optionalOption(
        '--confirm-destroy-keys <tenant>',
        'the tenant id again: destroys its keys for good',
        'none: the shred is refused',
      ),
    )
    .addOption(reasonOption())
    .examples(
      'callveil tenant shred --config /etc/callveil/config.yaml --tenant acme --confirm-destroy-keys acme --reason OFF-7',
    )
    .run<ShredOptions>(async (o) => (await import('../subject-rights.js')).shred(o, env, io.stdout));
};
