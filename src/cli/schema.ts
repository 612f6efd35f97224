// `callveil schema [which]`: the JSON Schemas callveil publishes, one per document it writes.
import { callJsonSchema } from '../privacy/call-record.js';
import { cdrJsonSchema } from '../privacy/cdr-record.js';
import { erasureJsonSchema } from '../subject/erase-request.js';
import type { SchemaName } from './commands/schema.js';

const SCHEMAS: Readonly<Record<SchemaName, () => unknown>> = {
  record: cdrJsonSchema,
  call: callJsonSchema,
  erasure: erasureJsonSchema,
};

export function schemaText(which: SchemaName): string {
  return JSON.stringify(SCHEMAS[which](), null, 2) + '\n';
}
