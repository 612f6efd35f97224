// `callveil subject export|suppress|unsuppress|suppressions|erase`: a data subject's rights.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import { optionalOption, type Registrar } from '../cli-command.js';
import type { ExportOptions } from '../subject-export.js';
import type { EraseOptions, SuppressOptions, TenantOptions, UnsuppressOptions } from '../subject-rights.js';
import { configOption, reasonOption, STOPPED, tenantOption } from '../shared-options.js';

const SUBJECT = "a data subject's rights: access, restriction, objection, erasure";

const rights = () => import('../subject-rights.js');

export const registerSubject: Registrar = (root, { env, io }) => {
  const subject = root.group('subject', SUBJECT);
  subject
    .command('export')
    .summary("access: a subscriber's records, as JSON")
    .description(
      "Reads the tenant's sanitized topic (<prefix>.<tenant>.cdr) and prints the subscriber's records as one " +
        'JSON array (tokens only, as published), for an access or portability request; the count goes to stderr. ' +
        'Read-only: runs beside a live gateway. Needs a kafka sink.',
    )
    .argument('<number>', "the subscriber's number, in any format")
    .addOption(configOption())
    .addOption(tenantOption())
    .addOption(
      optionalOption(
        '--since <time>',
        'only calls started at or after TIME (ISO 8601: 2026-11-01, 2026-11-01T08:00:00Z)',
        'all',
      ),
    )
    .addOption(optionalOption('--out <file>', 'write the document to FILE (mode 0600) instead of stdout', 'stdout'))
    .examples(
      "callveil subject export --config /etc/callveil/config.yaml --tenant acme '+44 7700 900999' --out dsar-42.json",
      "callveil subject export --config /etc/callveil/config.yaml --tenant acme --since 2026-11-01 '+44 7700 900999'",
    )
    .run<ExportOptions>(async (o, [number]) =>
      (await import('../subject-export.js')).subjectExport(o, number!, env, io),
    );

  subject
    .command('suppress')
    .summary('restriction, objection: withhold their records')
    .description(
      "Adds the subscriber to the tenant's suppression list: from the gateway's next start their records are " +
        'withheld, or published with them redacted when the rules say suppression.mode: redact. Give the number, ' +
        'or a token as records carry it (with --kid when known). Audited. ' +
        STOPPED,
    )
    .synopsis('--config FILE --tenant TENANT (<number> | --token TOKEN [--kid KID])')
    .argument('[number]', "the subscriber's number, in any format")
    .addOption(configOption())
    .addOption(tenantOption())
    .option('--token <token>', 'a token as records carry it, instead of the number')
    .option('--kid <kid>', 'the key the token was made under, when known')
    .examples(
      "callveil subject suppress --config /etc/callveil/config.yaml --tenant acme '+44 7700 900999'",
      'callveil subject suppress --config /etc/callveil/config.yaml --tenant acme --token Q0Zb4d1sJ2mX8pLw0aRt3g',
    )
    .run<SuppressOptions>(async (o, [number]) => (await rights()).suppress(o, number, env, io.stdout));

  subject
    .command('unsuppress')
    .summary('lifts a suppression')
    .description("Removes the subscriber's suppression from the tenant's list; audited. " + STOPPED)
    .synopsis('--config FILE --tenant TENANT (<number> | --id ID | --token TOKEN)')
    .argument('[number]', "the subscriber's number, in any format")
    .addOption(configOption())
    .addOption(tenantOption())
    .option('--id <id>', 'the suppression id (sup_...), as `subject suppressions` lists it')
    .option('--token <token>', 'a token the suppression holds')
    .examples('callveil subject unsuppress --config /etc/callveil/config.yaml --tenant acme --id sup_kqvbmwxtzajr')
    .run<UnsuppressOptions>(async (o, [number]) => (await rights()).unsuppress(o, number, env, io.stdout));

  subject
    .command('suppressions')
    .summary("lists a tenant's suppressions (tokens only)")
    .description(
      "Lists the tenant's suppressions: id, when and by whom, and the tokens under each key. Read-only: " +
        'works beside a running gateway.',
    )
    .addOption(configOption())
    .addOption(tenantOption())
    .examples('callveil subject suppressions --config /etc/callveil/config.yaml --tenant acme')
    .run<TenantOptions>(async (o) => (await rights()).suppressions(o, env, io.stdout));

  subject
    .command('erase')
    .summary('erasure: suppress, purge spool, request erasure')
    .description(
      'Erasure: suppresses the subscriber, removes their records from the local spool, and publishes an ' +
        "erasure request to the tenant's <prefix>.<tenant>.erasure topic for consumers to act on. Audited; needs " +
        'a kafka sink. Exit 1 if the request could not be published: run it again once Kafka answers. ' +
        STOPPED,
    )
    .argument('<number>', "the subscriber's number, in any format")
    .addOption(configOption())
    .addOption(tenantOption())
    .addOption(reasonOption())
    .examples(
      "callveil subject erase --config /etc/callveil/config.yaml --tenant acme '+44 7700 900999' --reason DPO-42",
    )
    .run<EraseOptions>(async (o, [number]) => (await rights()).erase(o, number!, env, io.stdout));
};
