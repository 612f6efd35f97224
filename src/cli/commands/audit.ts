// `callveil audit verify`: the audit log's hash chain.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import { Option } from 'commander';
import { optionalOption, type Registrar } from '../cli-command.js';
import type { AuditVerifyOptions } from '../audit.js';

export const registerAudit: Registrar = (root, { env, io }) => {
  root
    .group('audit', 'the audit log')
    .command('verify')
    .summary("checks the audit log's keyed chain and its published head")
    .description(
      "Checks the audit log's keyed chain (HMAC-SHA256 under the audit key) from its first entry (or from the " +
        'anchor retention left) to its last, and names the first line that was edited, removed, renumbered or ' +
        'reordered. A missing or empty log fails. With a Kafka sink it also reads the newest chain head this ' +
        'gateway published to <prefix>.audit and fails when the log does not reach it (a cut tail) or holds ' +
        'another entry there. The audit key comes from the keys file (auditKey) or CALLVEIL_AUDIT_KEY. ' +
        'Exit 0 when intact, 1 when not.',
    )
    .synopsis('[--config FILE] [--file PATH] [--head SEQ:MAC | --no-kafka] [--instance ID]')
    .addOption(
      optionalOption(
        '--config <file>',
        'the configuration file: verifies audit.jsonl in its storage.dir, with the audit key of its keys file',
        './callveil-data/audit.jsonl, key from CALLVEIL_AUDIT_KEY',
      ),
    )
    .addOption(
      new Option('--file <path>', 'the audit log file itself (a copy, a backup) instead of the one in storage.dir'),
    )
    .addOption(new Option('--head <head>', 'compare with this chain head: <seq>:<mac>, or a head message as published'))
    .addOption(new Option('--no-kafka', 'do not read the published heads from <prefix>.audit').conflicts('head'))
    .addOption(
      optionalOption(
        '--instance <id>',
        'whose published heads to compare with',
        'audit.instanceId, else the host name',
      ),
    )
    .examples(
      'callveil audit verify --config /etc/callveil/config.yaml',
      'callveil audit verify --config /etc/callveil/config.yaml --file /backup/audit.jsonl --head 1042:<mac>',
    )
    .run<AuditVerifyOptions>(async (o) => (await import('../audit.js')).auditVerify(o, env, io));
};
