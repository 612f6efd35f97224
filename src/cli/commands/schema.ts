// `callveil schema [which]`: a published JSON Schema.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import { Argument } from 'commander';
import type { Registrar } from '../cli-command.js';

/** One per document callveil writes; the first is the default. src/cli/schema.ts maps each to its schema. */
export const SCHEMA_NAMES = ['record', 'call', 'erasure'] as const;
export type SchemaName = (typeof SCHEMA_NAMES)[number];

export const registerSchema: Registrar = (root, { io }) => {
  root
    .command('schema')
    .summary('prints a JSON Schema: record (default), call, erasure')
    .description(
      'Prints the JSON Schema of a document callveil writes: the leg record of the <prefix>.<tenant>.cdr topics ' +
        '(record), the call record of <prefix>.<tenant>.calls (call) or the erasure request of ' +
        '<prefix>.<tenant>.erasure (erasure).',
    )
    .addArgument(new Argument('[which]', 'the document').choices(SCHEMA_NAMES).default(SCHEMA_NAMES[0]))
    .examples('callveil schema > cdr-record.schema.json', 'callveil schema call > call-record.schema.json')
    .run(async (_o, [which]) => {
      io.stdout((await import('../schema.js')).schemaText(which as SchemaName));
      return 0;
    });
};
