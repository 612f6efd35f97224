// End to end in headless Chromium, as a tenant admin uses the console.
// 1. Against a harness: sign in, flip a switch with the keyboard (API, audit
//    log), crafted call frames (a suppression-redacted caller, cells that a
//    spreadsheet would run as formulas) and the CSV export.
// 2. Against the real gateway fed by a replayed PBX session: the call list
//    against the replay's call records, filters, adding an extension, history
//    after on -> off -> on, the day's text alternative against the records,
//    redacted callers, the PBX link going down, 360 px without sideways
//    scrolling, axe-core, screenshots. The leak scanner reads every byte the
//    page received (API bodies, WebSocket frames) and the CSV it exported.
import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { BrowserContext, Page } from 'playwright-core';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { verifyAuditLog } from '../../src/audit/audit-log.js';
import { openConsentStore } from '../../src/consent/store.js';
import { startGateway } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import type { CallRecord } from '../../src/privacy/call-record.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { RULES_DIR, rulesConfig } from '../helpers/configs.js';
import { needlesForCapture } from '../helpers/ground-truth.js';
import { parseCsv, scanBuffers, type ScanOutput } from '../helpers/leak-scanner.js';
import { tempDir } from '../helpers/temp-dir.js';
import { API_TOKENS } from '../consent/stack.js';
import { apiHarness, TOKENS } from './helpers.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

const CHROMIUM = '/usr/bin/chromium';
/** Where the lead looks at the screenshots (copied when the folder exists; the run's own copies go with the temp dir). */
const SCREENSHOT_COPY = '/work/plan/screenshots';

// The only skip in the suite: no browser on this machine (CI installs it, see .ci/run).
const skip = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} not found; install it with: apt-get update && apt-get install -y chromium`;

interface Browser {
  readonly page: Page;
  readonly errors: string[];
  /** Every API body and WebSocket frame the page received. */
  received(): Promise<ScanOutput[]>;
}

async function browser(t: Tap.Test, width = 1280): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const profile = tempDir(t, 'chromium');
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    viewport: { width, height: 900 },
    acceptDownloads: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.teardown(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  const bodies: Array<Promise<ScanOutput | undefined>> = [];
  const frames: ScanOutput[] = [];
  page.on('response', (r) => {
    if (!new URL(r.url()).pathname.startsWith('/v1/')) return;
    bodies.push(
      r.text().then(
        (data) => ({ label: `api ${new URL(r.url()).pathname}`, data }),
        () => undefined,
      ),
    );
  });
  page.on('websocket', (ws) =>
    ws.on('framereceived', (f) => frames.push({ label: 'ws frame', data: String(f.payload) })),
  );
  return {
    page,
    errors,
    received: async () => [...(await Promise.all(bodies)).filter((b) => b !== undefined), ...frames],
  };
}

async function signIn(page: Page, base: string, token: string, who: string): Promise<void> {
  await page.goto(base + '/');
  await page.getByLabel('Tenant API token').fill(token);
  await page.getByLabel('Tenant API token').press('Enter');
  await page.getByText(who).waitFor();
}

/** axe-core in the page (evaluated over the devtools protocol: the page's CSP allows no injected script). */
async function axeViolations(page: Page): Promise<Array<{ id: string; impact: string; nodes: number }>> {
  const source = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(source);
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: any[] }> } }).axe;
    const r = await axe.run();
    return r.violations.map((v) => ({ id: v.id as string, impact: v.impact as string, nodes: v.nodes.length }));
  });
}

const seriousOrWorse = (vs: Array<{ impact: string }>) =>
  vs.filter((v) => v.impact === 'serious' || v.impact === 'critical');

async function noOverflowAt360(t: Tap.Test, page: Page, what: string): Promise<void> {
  await page.setViewportSize({ width: 360, height: 800 });
  await page.waitForTimeout(300); // the charts redraw for the new width
  const { scrollWidth, innerWidth, wide } = await page.evaluate(() => ({
    // What sticks out, to name it when this fails.
    wide: [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll'))
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  t.ok(scrollWidth <= innerWidth, `${what}: no sideways scrolling at 360 px (${scrollWidth} <= ${innerWidth})`, {
    wide,
  });
}

/** Saves a screenshot in the run's temp dir, and a copy where the lead looks. */
async function screenshot(page: Page, dir: string, name: string, fullPage = true): Promise<string> {
  const path = join(dir, name);
  await page.screenshot({ path, fullPage });
  if (existsSync(SCREENSHOT_COPY)) copyFileSync(path, join(SCREENSHOT_COPY, name));
  return path;
}

const iso = (s: string) => new Date(s).toISOString();

t.test('sign in, flip a switch, crafted call frames, CSV neutralised', { skip }, async (t) => {
  const h = await apiHarness(t);
  const { page, errors, received } = await browser(t);

  await page.goto(h.base + '/');
  t.equal(await page.title(), 'callveil — tenant console');
  // A wrong token is refused with a message.
  await page.getByLabel('Tenant API token').fill('z'.repeat(40));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
  await signIn(page, h.base, TOKENS.acme, 'Signed in for tenant acme');
  await page.locator('#link-feed', { hasText: 'Feed: connected' }).waitFor();
  await page.locator('#live', { hasText: /^live$/ }).waitFor();
  t.match(
    await page.locator('#calls-empty').innerText(),
    /No calls yet since the gateway started/,
    'empty state says what to do',
  );

  const sw = page.getByRole('switch', { name: 'Recording for extension 1001' });
  t.equal(await sw.isChecked(), false, 'off by default');
  await sw.focus();
  await page.keyboard.press('Space');
  await page.locator('#ext-status', { hasText: 'Recording for extension 1001 is now on.' }).waitFor();
  const api = await h.call('GET', '/v1/tenants/acme/extensions/1001', { token: TOKENS.acme });
  t.match(api.body, { extension: '1001', recording: true, changedBy: 'tenant:acme:acme-admin' }, 'the API has it');
  const entries = readFileSync(join(h.dir, 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditEntry);
  t.match(entries, [{ actor: 'tenant:acme:acme-admin', action: 'consent.set', subject: '1001' }], 'audited');
  t.ok(verifyAuditLog(join(h.dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }).ok);
  await page.locator('#changes li', { hasText: 'Extension 1001: recording on by tenant:acme:acme-admin' }).waitFor();

  // A change made elsewhere shows up without reloading.
  await h.call('PUT', '/v1/tenants/acme/extensions/1002', { token: TOKENS.operator, body: { recording: true } });
  await page.locator('#changes li', { hasText: 'Extension 1002: recording on by operator:ops' }).waitFor();
  await page.getByRole('switch', { name: 'Recording for extension 1002' }).and(page.locator(':checked')).waitFor();

  // Crafted call frames: what no valid record holds, the page must still neutralise.
  const party = (o: Record<string, unknown>) => ({
    token: null,
    country: null,
    callingCode: null,
    numberType: null,
    ...o,
  });
  const base = {
    schemaVersion: 1,
    tenant: 'acme',
    keyId: 'acme-1',
    answeredAt: null,
    ringSec: 4,
    talkSec: 0,
    transfers: [],
    legIds: [],
    complete: true,
    source: 'ami',
  };
  const call = (id: string, startedAt: string, o: Record<string, unknown>) => ({
    type: 'call' as const,
    record: { ...base, id, callId: id, startedAt: iso(startedAt), endedAt: iso(startedAt), ...o },
    recordingReason: null,
    extensions: ['1001'],
  });
  h.feed.publish(
    'acme',
    call('aaaabbbbccccddddeeeeffffaaaabbbb', '2026-11-23T09:00:00Z', {
      direction: 'inbound',
      outcome: 'no-answer',
      // A suppressed subscriber under suppression mode redact: the party with nothing in it.
      caller: party({ kind: 'e164' }),
      firstCalled: party({ kind: 'extension', extension: '1001' }),
      answeredBy: null,
      queue: { queue: '@SUM', waitSec: 3, answered: false, abandoned: true },
      recording: 'none',
    }),
  );
  h.feed.publish(
    'acme',
    call('bbbbccccddddeeeeffffaaaabbbbcccc', '2026-11-23T10:00:00Z', {
      direction: 'outbound',
      outcome: 'answered',
      caller: party({ kind: 'extension', extension: '1001' }),
      firstCalled: party({ kind: 'e164', prefix: '+4420', callingCode: '44' }),
      answeredBy: party({ kind: 'e164', token: '-h2k4Lz0aQm9xYb1' }),
      queue: null,
      recording: 'blocked',
      recordingReason: 'no-consent',
    }),
  );
  // Another tenant's frame never reaches this page.
  h.feed.publish('globex', call('ccccddddeeeeffffaaaabbbbccccdddd', '2026-11-23T11:00:00Z', { direction: 'internal' }));
  await page.locator('#call-rows tr').nth(1).waitFor();
  t.equal(await page.locator('#call-rows tr').count(), 2, 'two calls, none of globex');
  const first = await page.locator('#call-rows tr').first().innerText();
  t.match(first, /Outbound/, 'newest first');
  const redacted = await page.locator('#call-rows tr').nth(1).innerText();
  t.match(redacted, /redacted/, 'the redacted caller renders');
  t.match(redacted, /Abandoned|No answer/);

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: /Export/ }).click(),
  ]);
  const csvPath = await download.path();
  const csv = readFileSync(csvPath, 'utf8');
  const rows = parseCsv(csv);
  t.equal(rows.length, 3, 'a header and the two visible calls');
  const cells = rows.flat();
  t.same(
    cells.filter((c) => /^[=+\-@]/.test(c)),
    [],
    'no cell starts with = + - @',
  );
  t.ok(cells.includes("'+4420"), 'a prefix is neutralised');
  t.ok(cells.includes("'-h2k4Lz0aQm9xYb1"), 'a token starting with - is neutralised');
  t.ok(
    cells.some((c) => c.startsWith("'@SUM")),
    'a queue name starting with @ is neutralised',
  );

  // Filter: outbound only, and the export follows what is visible.
  await page.getByLabel('Direction').selectOption('outbound');
  t.equal(await page.locator('#call-rows tr').count(), 1);
  const [d2] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /Export/ }).click()]);
  t.equal(parseCsv(readFileSync(await d2.path(), 'utf8')).length, 2, 'the export holds the visible list only');
  await page.getByRole('button', { name: 'Clear filters' }).click();
  t.equal(await page.locator('#call-rows tr').count(), 2);

  // The status is honest: the gateway lost the PBX.
  h.feed.broadcast({ type: 'status', pbx: { up: false, reason: 'connection-lost' }, at: new Date().toISOString() });
  await page.locator('#link-pbx', { hasText: 'PBX link: down (connection-lost)' }).waitFor();
  t.equal(await page.locator('#live').innerText(), 'not live');
  t.match(await page.locator('#status-text').innerText(), /lost its link to the PBX/);

  t.same(seriousOrWorse(await axeViolations(page)), [], 'axe: no serious or critical violations');

  // An operator switching tenant: each tenant's own table, its own empty states, no stale text.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, h.base, TOKENS.operator, 'Signed in as operator');
  await page.locator('#ext-1001').waitFor();
  t.equal(await page.locator('#ext-empty').isVisible(), false, 'extensions listed: no empty state');
  await page.getByLabel('Tenant', { exact: true }).selectOption('globex');
  await page.locator('#ext-1007').waitFor();
  t.equal(await page.locator('#ext-rows > tr:not(.hist)').count(), 1, "globex's extensions only");
  t.equal(await page.locator('#ext-empty').isVisible(), false);
  t.equal(await page.locator('#call-rows tr').count(), 0, "acme's calls are gone");
  t.equal(await page.locator('#calls-empty').isVisible(), true);
  await page.locator('#live', { hasText: /^(live|not live)$/ }).waitFor();

  const seen = await received();
  t.ok(
    seen.some((o) => o.label === 'ws frame' && String(o.data).includes('"type":"call"')) &&
      seen.some((o) => o.label === 'api /v1/tenants/acme/calls'),
    `the scanner reads what the page received (${seen.length} bodies and frames)`,
  );
  const leaks = scanBuffers(needlesForCapture('recording-consent'), [...seen, { label: 'csv', data: csv }]);
  t.same(leaks, [], 'nothing the page received holds a fixture number');
  // The one refused sign-in shows up as a failed resource load; nothing else may.
  t.same(
    errors.filter((e) => !/status of 401/.test(e)),
    [],
    'no script errors and no CSP violations in the page',
  );
});

/** An independent reading of a call record's internal parties (extension or token), in order, once each. */
function internalOf(r: CallRecord): string[] {
  const out: string[] = [];
  const add = (p: any) => {
    if (p?.kind !== 'extension') return;
    const l = p.extension ?? p.token;
    if (l && !out.includes(l)) out.push(l);
  };
  add(r.caller);
  add(r.firstCalled);
  add(r.answeredBy);
  for (const x of r.transfers) {
    add(x.from);
    add(x.to);
  }
  return out;
}

t.test('the console over a replayed PBX session', { skip }, async (t) => {
  const dir = tempDir(t, 'console-gw');
  const shots = join(dir, 'screenshots');
  mkdirSync(shots);
  // The example rules, with acme's callers redacted (method redact) and acme's own time zone.
  const rules = join(dir, 'rules');
  mkdirSync(rules);
  for (const f of ['acme.yaml', 'globex.yaml', 'northwind.yaml']) copyFileSync(join(RULES_DIR, f), join(rules, f));
  const acme = readFileSync(join(rules, 'acme.yaml'), 'utf8');
  const redactCaller = acme
    .replace('caller: { method: token }', 'caller: { method: redact }')
    .replace('keySet: acme', 'keySet: acme\ntimeZone: Europe/London');
  t.not(redactCaller, acme);
  writeFileSync(join(rules, 'acme.yaml'), redactCaller);
  // Consent before the PBX session: 1001-1003 record, 1004 and 1005 do not.
  const at = new Date().toISOString();
  await openConsentStore(dir).save({
    acme: Object.fromEntries(
      ['1001', '1002', '1003'].map((e) => [e, { recording: true, changedBy: 'test', changedAt: at }]),
    ),
  });

  const { readCapture } = await import('../helpers/ground-truth.js');
  const ami = await startReplayServer({
    capture: readCapture('recording-consent'),
    username: 'gw',
    secret: 'pw',
    holdOpen: true,
    chunking: 'recorded',
  });
  let amiOpen = true;
  t.teardown(() => (amiOpen ? ami.close() : undefined));
  const loaded = rulesConfig(dir, rules, {
    ami: { host: '127.0.0.1', port: ami.port, username: 'gw', secret: 'pw', reconnectMinMs: 200, reconnectMaxMs: 400 },
    defaultTenant: 'acme',
    sink: { type: 'jsonl', path: join(dir, 'out.jsonl') },
    storage: { dir },
    api: { enabled: true, port: 0, tokens: API_TOKENS },
    metrics: { enabled: false },
    consent: { extensions: { acme: ['1001', '1002', '1003', '1004', '1005'] } },
  });
  const log = createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }));
  const gw = await startGateway(loaded, {}, log);
  t.teardown(() => gw.stop());
  const records: CallRecord[] = [];
  gw.pipeline.onCallPublished((r) => r.tenant === 'acme' && records.push(r));
  const base = `http://127.0.0.1:${gw.api!.port}`;

  // The whole session, and every call record out (calls go out a grace after they end).
  await ami.done;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(6500);
  for (let n = -1; n !== records.length; await sleep(1500)) n = records.length;
  t.ok(records.length >= 10, `the replay's acme call records (${records.length})`);
  const redactedCallers = records.filter((r) => r.caller === undefined);
  t.ok(redactedCallers.length > 0, 'some records have a redacted caller (inbound calls, method redact)');
  t.ok(
    records.some((r) => r.recording === 'blocked') && records.some((r) => r.recording === 'kept'),
    'recordings kept and blocked',
  );

  const { page, errors, received } = await browser(t);
  await signIn(page, base, TOKENS.acme, 'Signed in for tenant acme');
  await page.locator('#live', { hasText: /^live$/ }).waitFor();
  await page.locator('#link-pbx', { hasText: 'PBX link: up' }).waitFor();

  // The call list: one row per record, newest first, saying what the record says.
  await page
    .locator('#call-rows tr')
    .nth(records.length - 1)
    .waitFor();
  t.equal(await page.locator('#call-rows tr').count(), records.length, 'one row per call record');
  const shown = await page.$$eval('#call-rows tr', (trs) =>
    trs.map((tr) => {
      const td = [...tr.querySelectorAll('td')].map((c) => (c as HTMLElement).innerText.trim());
      return { at: tr.querySelector('time')!.getAttribute('datetime')!, cells: td };
    }),
  );
  const times = shown.map((s) => s.at);
  t.same(times, [...times].sort().reverse(), 'newest first');
  const DIR: Record<string, string> = {
    inbound: 'Inbound',
    outbound: 'Outbound',
    internal: 'Internal',
    transit: 'Transit',
  };
  const want = records
    .map((r) =>
      [
        r.startedAt,
        DIR[r.direction],
        internalOf(r).join(', ') || '—',
        r.caller === undefined ? 'redacted' : ((r.caller as any).extension ?? (r.caller as any).token ?? r.caller.kind),
        r.recording,
      ].join(' | '),
    )
    .sort();
  const got = shown
    .map((s) => [s.at, s.cells[1], s.cells[2], s.cells[3], s.cells[6]!.split(':')[0]].join(' | '))
    .sort();
  t.same(got, want, "the call list is the replay's call records");
  const blockedRows = shown.filter((s) => s.cells[6]!.startsWith('blocked'));
  t.ok(blockedRows.length > 0);
  t.ok(
    blockedRows.every((s) => s.cells[6] === 'blocked: an extension on the call has recording off'),
    "a blocked recording says why (the enforcer's reason joined to the call)",
  );
  t.equal(
    shown.filter((s) => s.cells[3] === 'redacted').length,
    redactedCallers.length,
    'records with a redacted caller appear',
  );

  // Filters: by extension, then direction on top.
  await page.getByLabel('Extension', { exact: true }).selectOption('1004');
  const with1004 = records.filter((r) => internalOf(r).includes('1004'));
  t.ok(with1004.length > 0);
  t.equal(await page.locator('#call-rows tr').count(), with1004.length, 'filter by extension');
  await page.getByLabel('Direction').selectOption('internal');
  t.equal(
    await page.locator('#call-rows tr').count(),
    with1004.filter((r) => r.direction === 'internal').length,
    'and by direction',
  );
  await page.getByRole('button', { name: 'Clear filters' }).click();
  await page.getByLabel('Outcome').selectOption('missed');
  t.equal(
    await page.locator('#call-rows tr').count(),
    records.filter((r) => ['no-answer', 'cancelled', 'abandoned'].includes(r.outcome)).length,
    'and by outcome',
  );
  await page.getByRole('button', { name: 'Clear filters' }).click();

  // Per-extension counts since the start.
  const row1004 = await page.locator('#ext-1004 td').allInnerTexts();
  t.equal(row1004[2], String(with1004.length), 'calls of 1004');
  t.equal(row1004[4], String(with1004.filter((r) => r.recording === 'kept').length), 'kept with 1004');
  t.equal(row1004[5], String(with1004.filter((r) => r.recording === 'blocked').length), 'blocked with 1004');

  // Adding an extension: a consent switch, off; who counts as internal does not change.
  await page.getByLabel('Add an extension').fill('1234');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.locator('#ext-status', { hasText: 'Extension 1234 added, recording off.' }).waitFor();
  t.equal(await page.getByRole('switch', { name: 'Recording for extension 1234' }).isChecked(), false);
  const exts = await fetch(`${base}/v1/tenants/acme/extensions`, {
    headers: { authorization: `Bearer ${TOKENS.acme}` },
  }).then((r) => r.json());
  t.match(
    exts.extensions.find((e: any) => e.extension === '1234'),
    { recording: false, changedBy: 'tenant:acme:acme-admin' },
    'the API lists the added extension, off',
  );

  // On -> off -> on for 1005: three entries in its history, newest first.
  const sw = page.getByRole('switch', { name: 'Recording for extension 1005' });
  for (const state of ['on', 'off', 'on']) {
    await sw.click();
    await page.locator('#ext-status', { hasText: `Recording for extension 1005 is now ${state}.` }).waitFor();
  }
  await page.getByRole('button', { name: 'Show consent history of extension 1005' }).click();
  const hist = page.locator('#hist-list-1005 li');
  await hist.nth(2).waitFor();
  t.equal(await hist.count(), 3, 'on, off, on: three entries');
  t.match(await hist.allInnerTexts(), [/recording on by tenant:acme:acme-admin/, /recording off/, /recording on/]);
  const api = await fetch(`${base}/v1/tenants/acme/consent-history?extension=1005`, {
    headers: { authorization: `Bearer ${TOKENS.acme}` },
  }).then((r) => r.json());
  t.same(
    api.changes.map((c: any) => [c.recording, c.previous]),
    [
      [true, false],
      [false, true],
      [true, false],
    ],
    'the API history',
  );

  // Bulk: 1004 and 1234 on in one PATCH.
  await page.getByLabel('Select extension 1004').check();
  await page.getByLabel('Select extension 1234').check();
  await page.getByRole('button', { name: 'Recording on for selected (2)' }).click();
  await page.locator('#ext-status', { hasText: 'Recording on for 2 extensions: 1004, 1234.' }).waitFor();
  t.equal(gw.consent.registry.isOn('acme', '1004') && gw.consent.registry.isOn('acme', '1234'), true);

  // The day's text alternative holds the records' counts, hour by hour in Europe/London.
  const hourOf = (s: string) =>
    new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', hour: '2-digit', hourCycle: 'h23' }).format(
      new Date(s),
    );
  const dateOf = (s: string) =>
    new Intl.DateTimeFormat('en-CA', {
      timeZone: 'Europe/London',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    }).format(new Date(s));
  const day = records
    .map((r) => dateOf(r.startedAt))
    .sort()
    .at(-1)!;
  await page.locator('#day-title', { hasText: day }).waitFor();
  const byHour = new Map<string, number[]>();
  for (const r of records.filter((x) => dateOf(x.startedAt) === day)) {
    const k = `${hourOf(r.startedAt)}:00`;
    const c = byHour.get(k) ?? [0, 0, 0, 0, 0];
    const g = ['answered', 'pbx-answered'].includes(r.outcome)
      ? 0
      : ['no-answer', 'cancelled', 'abandoned'].includes(r.outcome)
        ? 1
        : 2;
    c[g]!++;
    if (r.recording === 'kept') c[3]!++;
    if (r.recording === 'blocked') c[4]!++;
    byHour.set(k, c);
  }
  const table = await page.$$eval('#day-rows tr', (trs) =>
    trs.map((tr) => (tr as HTMLElement).innerText.split('\t').map((s) => s.trim())),
  );
  t.same(
    table,
    [...byHour].sort().map(([h, c]) => [h, ...c.map(String)]),
    "the chart's text alternative: the records' counts per hour",
  );
  const total = [...byHour.values()].reduce((a, c) => a.map((n, i) => n + c[i]!), [0, 0, 0, 0, 0]);
  t.match(
    await page.locator('#day-summary').innerText(),
    `${total[0]! + total[1]! + total[2]!} calls: ${total[0]} answered, ${total[1]} missed, ${total[2]} other`,
  );
  t.match(await page.locator('#day-note').innerText(), /Europe\/London.*restart with it/);
  t.equal(await page.locator('#chart-calls canvas').count(), 1, 'the calls chart is drawn');
  t.equal(await page.locator('#chart-recordings canvas').count(), 1, 'the recordings chart is drawn');

  t.same(seriousOrWorse(await axeViolations(page)), [], 'axe: no serious or critical violations');
  const wide = await screenshot(page, shots, 'console-1280.png');
  await noOverflowAt360(t, page, 'with calls');
  const narrow = await screenshot(page, shots, 'console-360.png');
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, shots, 'console-360-top.png', false);
  t.ok(existsSync(wide) && existsSync(narrow), 'screenshots at 1280 and 360 px');
  t.same(seriousOrWorse(await axeViolations(page)), [], 'axe at 360 px');

  // The gateway loses the PBX: the page stops saying live.
  await ami.close();
  amiOpen = false;
  await page.locator('#link-pbx', { hasText: /PBX link: down/ }).waitFor();
  t.equal(await page.locator('#live').innerText(), 'not live');
  t.equal(await page.locator('#link-feed').innerText(), 'Feed: connected', 'the feed itself is still up');

  const seen = await received();
  t.ok(
    seen.some((o) => o.label === 'ws frame' && String(o.data).includes('"type":"status"')) &&
      seen.some((o) => o.label === 'api /v1/tenants/acme/calls'),
    `the scanner reads what the page received (${seen.length} bodies and frames)`,
  );
  const leaks = scanBuffers(needlesForCapture('recording-consent'), [
    ...seen,
    { label: 'page', data: await page.content() },
  ]);
  t.same(leaks, [], 'nothing the page received holds a fixture number or name');
  t.same(errors, [], 'no script errors and no CSP violations in the page');
});
