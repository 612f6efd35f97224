// `callveil keys generate <kind>`: 32 random bytes as hex, printed or added to the keys file.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import { defaultEgress } from '../egress/egress.js';
import { GatewayError } from '../errors.js';
import type { CliIo } from './cli-command.js';
import type { KeyKind, KeysGenerateOptions } from './commands/keys.js';

const FIELD: Partial<Record<KeyKind, 'auditKey' | 'storageKey'>> = { audit: 'auditKey', storage: 'storageKey' };

export async function keysGenerate(kind: KeyKind, o: KeysGenerateOptions, io: CliIo): Promise<number> {
  const key = randomBytes(32).toString('hex');
  if (o.keysFile === undefined) {
    const line = `${key}\n`;
    if (!defaultEgress().pass('cli', line)) return 1;
    io.stdout(line);
    return 0;
  }
  const field = FIELD[kind];
  if (field === undefined)
    throw new GatewayError(
      'GW_USAGE',
      `--keys-file adds audit and storage keys only: a ${kind} key is added by hand, with its kid and activeFrom`,
    );
  let doc;
  try {
    doc = parseDocument(readFileSync(o.keysFile, 'utf8'));
  } catch (err) {
    throw new GatewayError(
      'GW_CONFIG_UNREADABLE',
      `cannot read the keys file ${o.keysFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (doc.errors.length > 0) throw new GatewayError('GW_CONFIG_INVALID', `${o.keysFile}: not valid YAML`);
  if (doc.has(field))
    throw new GatewayError(
      'GW_USAGE',
      `${o.keysFile} already has ${field}: replacing it would make ${kind === 'audit' ? 'the audit log unverifiable' : 'the stores unreadable'}; it is left as it is`,
    );
  doc.set(field, doc.createNode({ secret: key }));
  await writeFileAtomic(o.keysFile, String(doc));
  const line = `${field} added to ${o.keysFile} (the key itself is not printed)\n`;
  if (defaultEgress().pass('cli', line)) io.stdout(line);
  return 0;
}
