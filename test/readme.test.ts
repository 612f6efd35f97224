// The README's lists are the code's lists: the record's fields, the reasons a
// record is withheld. (Metric names are checked against a running gateway in
// test/observability/gateway.test.ts.)
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createCallModel } from '../src/assemble/call-model.js';
import { createPipeline } from '../src/pipeline.js';
import { labRules } from './helpers/lab-rules.js';
import { names, section, tables } from './helpers/readme.js';

const SCHEMA = JSON.parse(readFileSync(new URL('../src/privacy/cdr-record.schema.json', import.meta.url), 'utf8')) as {
  properties: Record<string, { properties?: Record<string, unknown> }>;
};

t.test('"The record": one row per field of the record schema, and a row per party field', async (t) => {
  const [fields, party] = tables(section('The record'));
  t.ok(fields && party, 'a field table and a party table');
  const documented = fields!.flatMap((row) => names(row[0]!)).sort();
  t.same(documented, Object.keys(SCHEMA.properties).sort(), 'record fields');
  const partyDocumented = party!.flatMap((row) => names(row[0]!)).sort();
  t.same(partyDocumented, Object.keys(SCHEMA.properties.caller!.properties!).sort(), 'caller/callee fields');
  t.same(Object.keys(SCHEMA.properties.callee!.properties!).sort(), partyDocumented, 'callee has the same fields');
});

t.test('"Metrics": the withheld reasons are the ones the pipeline counts', async (t) => {
  const pipeline = createPipeline({
    model: createCallModel({ rules: () => labRules().callModel }),
    sanitise: () => ({ ok: false, reason: 'schema', tenant: null }),
    sanitiseCall: () => ({ ok: false, reason: 'schema', tenant: null }),
    keyCallId: () => null,
    sink: { write: async () => undefined },
    log: { warn: () => undefined, error: () => undefined },
  });
  const [metrics] = tables(section('Metrics'));
  const row = metrics!.find((r) => r[0]!.includes('callveil_records_withheld_total'));
  t.ok(row, 'a row for callveil_records_withheld_total');
  t.same(names(row![1]!).sort(), Object.keys(pipeline.counts().withheld).sort());
});
