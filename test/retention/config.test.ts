// Retention settings: defaults, and bad values refused with the file, the
// path inside it and what was expected (config `retention`, `sink.fixRetention`,
// rules `retention.kafkaDays`).
import t from 'tap';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { formatRuleProblems, loadRules } from '../../src/rules/load.js';
import { DAY_MS, retentionPolicy } from '../../src/retention/sweep.js';
import { RULES_DIR, rulesConfig, twoTenantConfig } from '../helpers/configs.js';
import { tempDir } from '../helpers/temp-dir.js';

const inline = (extra: Record<string, unknown>) =>
  parseConfig(
    { tenants: [{ id: 'acme', keyId: 'a-1', keyEnv: 'K' }], ...extra },
    { K: 'a10f'.repeat(16) },
    'callveil.yaml',
  );

t.test('defaults: spool 7 days, audit and consent history a year, hourly sweep; topics only reported', async (t) => {
  const { config } = twoTenantConfig();
  t.same(config.retention, {
    spoolMaxAgeDays: 7,
    auditMaxAgeDays: 365,
    auditSegmentDays: 1,
    consentHistoryMaxAgeDays: 365,
    sweepIntervalMs: 3_600_000,
  });
  t.same(retentionPolicy(config.retention), {
    spoolMaxAgeMs: 7 * DAY_MS,
    audit: { maxAgeMs: 365 * DAY_MS, segmentMs: DAY_MS },
    consentHistoryMaxAgeMs: 365 * DAY_MS,
  });
  const kafka = inline({ sink: { type: 'kafka', brokers: ['127.0.0.1:9092'] } }).config.sink;
  t.equal(kafka.type === 'kafka' && kafka.fixRetention, false);
  t.equal(
    retentionPolicy(inline({ retention: { spoolMaxAgeDays: 0.5 } }).config.retention).spoolMaxAgeMs,
    12 * 3_600_000,
    'fractions of a day',
  );
});

t.test('bad retention settings are refused, naming the path and what was expected', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ retention: { spoolMaxAgeDays: 0 } }, /callveil\.yaml: retention\.spoolMaxAgeDays: expected at least one hour/],
    [{ retention: { auditMaxAgeDays: 100_000 } }, /retention\.auditMaxAgeDays: expected at most 36500 days/],
    [
      { retention: { auditMaxAgeDays: 1, auditSegmentDays: 2 } },
      /retention\.auditSegmentDays: expected at most auditMaxAgeDays/,
    ],
    [{ retention: { sweepIntervalMs: 5 } }, /retention\.sweepIntervalMs/],
    [{ retention: { spoolMaxAge: 7 } }, /retention/],
    [{ sink: { type: 'kafka', brokers: ['127.0.0.1:9092'], fixRetention: 'yes' } }, /sink\.fixRetention/],
  ];
  for (const [extra, message] of cases)
    t.throws(() => inline(extra), { code: 'GW_CONFIG_INVALID', message }, JSON.stringify(extra));
});

t.test('rules retention.kafkaDays: per tenant in ms; default 7 days; bad values name the file and line', async (t) => {
  const tmp = tempDir(t, 'retention-rules');
  const loaded = rulesConfig(tmp);
  t.same(
    Object.fromEntries(loaded.kafkaRetentionMs ?? []),
    { acme: 30 * DAY_MS, globex: 14 * DAY_MS, northwind: 2 * DAY_MS },
    'from rules/*.yaml',
  );

  const dir = join(tmp, 'rules');
  cpSync(RULES_DIR, dir, { recursive: true });
  const acme = readFileSync(join(dir, 'acme.yaml'), 'utf8');
  writeFileSync(join(dir, 'acme.yaml'), acme.replace(/retention:\n {2}kafkaDays: 30[^\n]*\n/, ''));
  const r = loadRules({ dir }, {});
  if (!r.ok) throw new Error(formatRuleProblems(r.problems));
  t.equal(r.loaded.kafkaRetentionMs.get('acme'), 7 * DAY_MS, 'no retention block: Kafka default');

  for (const [bad, expected] of [
    ['retention:\n  kafkaDays: 0\n', /acme\.yaml:\d+: retention\.kafkaDays: expected at least one hour/],
    ['retention:\n  kafkaDays: 5000\n', /retention\.kafkaDays: expected at most 3650 days/],
    ['retention:\n  kafkaMs: 5000\n', /acme\.yaml:\d+: retention\.kafkaMs: unknown key/],
  ] as const) {
    writeFileSync(join(dir, 'acme.yaml'), acme.replace(/retention:\n {2}kafkaDays: 30[^\n]*\n/, bad));
    const bad_ = loadRules({ dir }, {});
    t.notOk(bad_.ok);
    if (!bad_.ok) t.match(formatRuleProblems(bad_.problems), expected);
  }
});
