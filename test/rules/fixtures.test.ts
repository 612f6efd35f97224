// Tenant resolution and every pseudonymisation method on the real captures:
// the example rules folder (rules/) replayed through the whole path, records
// compared with Master.csv, and every byte written searched for leaks.
import t from 'tap';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { replayCapture } from '../../src/main.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
import { createJsonlFileSink } from '../../src/sink/jsonl.js';
import { captureFile, masterCsvFile, needlesForCapture, readMasterCsv } from '../helpers/ground-truth.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { RULES_DIR, rulesConfig } from '../helpers/configs.js';
import { memoryLog } from '../helpers/memory-log.js';
import { idsOfRow } from '../helpers/record-ids.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir(t, 'rules-e2e');

async function replay(name: string, rulesDir: string, label: string) {
  const out = join(tmp, `${label}-${name}.jsonl`);
  const { log, text } = memoryLog();
  const loaded = rulesConfig(tmp, rulesDir);
  const summary = await replayCapture({
    capturePath: captureFile(name),
    loaded,
    sink: createJsonlFileSink(out),
    log,
  });
  const bytes = readFileSync(out);
  const records = bytes
    .toString('utf8')
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => CdrRecord.parse(JSON.parse(l)));
  const leaks = scanBuffers(needlesForCapture(name), [
    { label: 'jsonl', data: bytes },
    { label: 'log', data: text() },
    { label: 'summary', data: JSON.stringify(summary) },
  ]);
  return { summary, records, leaks, loaded, log: text().toString('utf8') };
}

/** A copy of the example rules with `edit` applied to each file's text. */
function variant(label: string, edit: (text: string, file: string) => string): string {
  const dir = join(tmp, label);
  mkdirSync(dir, { recursive: true });
  cpSync(RULES_DIR, dir, { recursive: true });
  for (const f of ['acme.yaml', 'globex.yaml', 'northwind.yaml'])
    writeFileSync(join(dir, f), edit(readFileSync(join(RULES_DIR, f), 'utf8'), f));
  return dir;
}

for (const name of [
  'basic-internal',
  'inbound-pstn',
  'outbound-pstn',
  'recording-consent',
  'edge-actions',
  'transfers-queue',
  'load',
]) {
  t.test(`${name}: every call lands in the tenant its accountcode, tenantid or DID says; no leak`, async (t) => {
    const { summary, records, leaks, loaded } = await replay(name, RULES_DIR, 'example');
    const master = readMasterCsv(masterCsvFile(name));
    t.equal(summary.withheld, 0, 'every call has an owner in the example rules');
    t.equal(records.length, master.length);
    const byId = new Map(records.map((r) => [r.id, r]));
    for (const row of master) {
      // Empty accountcode: the support queue (tenantid acme) or acme's announcement DID (...0190).
      const want = row.accountcode === '' ? 'acme' : row.accountcode;
      // The id is keyed per tenant: the record is found under the tenant it must land in, or not at all.
      t.equal(byId.get(idsOfRow(loaded, want, row).id)?.tenant, want, `${row.uniqueid} -> ${want}`);
    }
    for (const r of records) {
      t.equal(r.keyId, r.tenant === 'acme' ? 'acme-2026-11' : 'globex-2026-11', 'the newest active key signs');
      if (r.tenant === 'globex') {
        t.equal(
          r.caller?.token === null || r.caller?.kind !== 'e164' || r.caller?.fpe !== undefined,
          true,
          'globex: e164 callers are FF1-encrypted',
        );
        t.equal(
          r.callee?.token ?? null,
          r.callee?.kind === 'extension' ? r.callee.token : null,
          'globex: callee prefix only',
        );
        t.equal(
          r.callee?.kind === 'e164' ? (r.callee.prefix?.length ?? 0) <= 7 : true,
          true,
          'prefix at most + and 6 digits',
        );
      } else {
        t.notOk('callerName' in r, 'acme redacts names');
        if (r.caller?.kind === 'extension') t.match(r.caller.extension, /^[0-9*#]{1,6}$/, 'acme keeps extensions');
      }
    }
    t.same(leaks, [], 'no raw number or name in anything written');
  });
}

t.test('a call no rule set claims is withheld and counted, never published under another tenant', async (t) => {
  // Without acme's announcement DID, the two inbound calls to +44 20 7946 0190 (no accountcode, no tenantid) have no owner.
  const dir = variant('no-announcement', (text, f) =>
    f === 'acme.yaml' ? text.replace(', "+442079460190"', '') : text,
  );
  const { summary, records, leaks, log } = await replay('inbound-pstn', dir, 'unmatched');
  t.equal(
    summary.counts.withheld['unknown-tenant'],
    4,
    'two leg records and their two call records withheld as unknown-tenant',
  );
  t.equal(records.length, readMasterCsv(masterCsvFile('inbound-pstn')).length - 2);
  const unownedRows = readMasterCsv(masterCsvFile('inbound-pstn')).filter((r) =>
    ['pbx-lab-1795418489.100', 'pbx-lab-1795418492.111'].includes(r.uniqueid),
  );
  t.equal(unownedRows.length, 2);
  const full = await replay('inbound-pstn', RULES_DIR, 'owned');
  // Under any tenant's id key: the rows' records exist in the full replay only.
  const unowned = (loaded: typeof full.loaded) =>
    ['acme', 'globex', 'northwind'].flatMap((tenant) => unownedRows.map((row) => idsOfRow(loaded, tenant, row).id));
  t.notOk(
    records.some((r) => unowned(full.loaded).includes(r.id)),
    'neither is published',
  );
  t.same(
    full.records.filter((r) => unowned(full.loaded).includes(r.id)).map((r) => r.tenant),
    ['acme', 'acme'],
    "with the DID rule, both are acme's",
  );
  t.match(log, /"reason":"unknown-tenant"/);
  t.same(leaks, []);
});

const METHODS: Array<[string, string]> = [
  ['token', '{ method: token, ratingPrefix: 5 }'],
  ['fpe', '{ method: fpe, keepDigits: 5 }'],
  ['prefix', '{ method: prefix, keepDigits: 5 }'],
  ['redact', '{ method: redact }'],
];

for (const [method, rule] of METHODS) {
  t.test(`every party as ${method} (longest kept prefix allowed): no leak on the PSTN captures`, async (t) => {
    const dir = variant(`all-${method}`, (text) =>
      text
        .replace(/caller: \{[^}]*\}/, `caller: ${rule}`)
        .replace(/callee: \{[^}]*\}/, `callee: ${rule}`)
        .replace(/callerName: \{[^}]*\}/, `callerName: { method: ${method === 'token' ? 'token' : 'redact'} }`),
    );
    for (const name of ['inbound-pstn', 'outbound-pstn', 'transfers-queue', 'edge-actions']) {
      const { summary, records, leaks } = await replay(name, dir, `all-${method}`);
      t.equal(summary.withheld, 0, `${name}: nothing withheld`);
      t.same(leaks, [], `${name}: no leak`);
      if (method === 'redact')
        t.ok(
          records.every((r) => !('caller' in r) && !('callee' in r)),
          `${name}: no party at all`,
        );
      if (method === 'fpe')
        t.ok(
          records.some((r) => r.caller?.fpe !== undefined),
          `${name}: fpe values present`,
        );
    }
  });
}
