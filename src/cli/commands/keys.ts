// `callveil keys generate|rotate|migrate`: key material for the keys file, its
// rotation, and encrypting stores an older version wrote in plaintext.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import { Argument, Option } from 'commander';
import { optionalOption, type Registrar } from '../cli-command.js';
import { configOption, STOPPED } from '../shared-options.js';

/** What each kind keys; the README "Keys the gateway holds" says what losing each means. */
export const KEY_KINDS = ['audit', 'storage', 'pseudonym', 'id'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];

export interface KeysGenerateOptions {
  readonly keysFile?: string;
}

export interface KeysRotateOptions {
  readonly keysFile?: string;
  readonly keySet?: string;
  readonly activeFrom?: string;
  readonly config?: string;
}

export interface KeysMigrateOptions {
  readonly config: string;
}

export const registerKeys: Registrar = (root, { env, io }) => {
  const keys = root.group('keys', 'key material for the keys file');
  keys
    .command('generate')
    .summary('prints a new random key (32 bytes, hex); --keys-file adds an audit or storage key')
    .description(
      'Prints 32 random bytes as 64 hex digits, for the keys file: audit (auditKey: the MAC key of the audit ' +
        'log), storage (storageKey), pseudonym (a keySets entry) or id (an idKeys entry). With --keys-file, an ' +
        'audit or storage key is added to that file (mode 0600) unless it already has one; pseudonym keys are ' +
        'added with `keys rotate pseudonym`, id keys by hand (README "Keys and rotation").',
    )
    .synopsis('<kind> [--keys-file FILE]')
    .addArgument(new Argument('<kind>', 'which key').choices(KEY_KINDS))
    .addOption(new Option('--keys-file <file>', 'add the new audit or storage key to this keys file'))
    .examples(
      'callveil keys generate audit --keys-file /etc/callveil/keys.yaml',
      'callveil keys generate pseudonym > /run/secrets/acme_key',
    )
    .run<KeysGenerateOptions>(async (o, [kind]) => (await import('../keys.js')).keysGenerate(kind as KeyKind, o, io));
  keys
    .command('rotate')
    .summary('pseudonym: adds a new versioned key; storage: re-encrypts every store under a new storage key')
    .description(
      'pseudonym: adds a new random key to keySets.<set> of the keys file, with a new kid and an activeFrom ' +
        '(default now); from then on it signs new records, and the older keys still answer lookups until they ' +
        'are retired. storage: ' +
        STOPPED +
        ' Writes a new random storageKeyNext into the keys file, re-encrypts every store (audit log, consent ' +
        'store and journal, suppression lists) under it, one file at a time and atomically, audits the ' +
        'rotation, then makes it storageKey; cut short, run it again and it finishes (both keys open the stores ' +
        'meanwhile). audit and id keys are not rotated by this command: it says why and what to do.',
    )
    .synopsis('<kind> [--keys-file FILE --key-set SET [--active-from TIME]] [--config FILE]')
    .addArgument(new Argument('<kind>', 'which key').choices(KEY_KINDS))
    .addOption(new Option('--keys-file <file>', 'pseudonym: the keys file to add the key to'))
    .addOption(new Option('--key-set <set>', 'pseudonym: the key set (keySets.<set>)'))
    .addOption(optionalOption('--active-from <time>', 'pseudonym: when the new key starts signing (ISO-8601)', 'now'))
    .addOption(new Option('--config <file>', 'storage: the configuration file (its storage.dir and keys file)'))
    .examples(
      'callveil keys rotate pseudonym --keys-file /etc/callveil/keys.yaml --key-set acme',
      'callveil keys rotate storage --config /etc/callveil/config.yaml',
    )
    .run<KeysRotateOptions>(async (o, [kind]) => (await import('../keys.js')).keysRotate(kind as KeyKind, o, env, io));
  keys
    .command('migrate')
    .summary('encrypts stores an older version wrote in plaintext (the gateway also does it at start)')
    .description(
      STOPPED +
        ' Encrypts in place, atomically per file, every store an older version wrote in plaintext (audit log ' +
        'and its segments, consent.json and consent.journal, suppression lists) under the storage key, and ' +
        'audits it. The gateway does the same at start; this is for doing it first, or for commands that ' +
        'refuse a plaintext store.',
    )
    .synopsis('--config FILE')
    .addOption(configOption())
    .examples('callveil keys migrate --config /etc/callveil/config.yaml')
    .run<KeysMigrateOptions>(async (o) => (await import('../keys.js')).keysMigrate(o, env, io));
};
