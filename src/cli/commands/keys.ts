// `callveil keys generate <kind>`: new random key material for the keys file.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import { Argument, Option } from 'commander';
import type { Registrar } from '../cli-command.js';

/** What each kind keys; the README "Keys the gateway holds" says what losing each means. */
export const KEY_KINDS = ['audit', 'storage', 'pseudonym', 'id'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];

export interface KeysGenerateOptions {
  readonly keysFile?: string;
}

export const registerKeys: Registrar = (root, { io }) => {
  root
    .group('keys', 'key material for the keys file')
    .command('generate')
    .summary('prints a new random key (32 bytes, hex); --keys-file adds an audit or storage key')
    .description(
      'Prints 32 random bytes as 64 hex digits, for the keys file: audit (auditKey: the MAC key of the audit ' +
        'log), storage (storageKey), pseudonym (a keySets entry) or id (an idKeys entry). With --keys-file, an ' +
        'audit or storage key is added to that file (mode 0600) unless it already has one; pseudonym and id keys ' +
        'are added by hand (a new kid with its activeFrom: README "Keys and rotation").',
    )
    .synopsis('<kind> [--keys-file FILE]')
    .addArgument(new Argument('<kind>', 'which key').choices(KEY_KINDS))
    .addOption(new Option('--keys-file <file>', 'add the new audit or storage key to this keys file'))
    .examples(
      'callveil keys generate audit --keys-file /etc/callveil/keys.yaml',
      'callveil keys generate pseudonym > /run/secrets/acme_key',
    )
    .run<KeysGenerateOptions>(async (o, [kind]) => (await import('../keys.js')).keysGenerate(kind as KeyKind, o, io));
};
