// End to end in headless Chromium: a tenant admin signs in with the tenant
// token, flips a consent switch with the keyboard, and the change is in the
// API and in the audit log; the live feed shows up in the page.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { verifyAuditLog } from '../../src/audit/audit-log.js';
import { tempDir } from '../helpers/temp-dir.js';
import { apiHarness, TOKENS } from './helpers.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

const CHROMIUM = '/usr/bin/chromium';

// The only skip in the suite: no browser on this machine (CI installs it, see .ci/run).
const skip = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} not found; install it with: apt-get update && apt-get install -y chromium`;

{
  t.test('sign in, flip a switch, see it in the API, the audit log and the feed', { skip }, async (t) => {
    const { chromium } = await import('playwright-core');
    const profile = tempDir(t, 'chromium');
    const h = await apiHarness(t);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
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
    page.setDefaultTimeout(10_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));

    await page.goto(h.base + '/');
    t.equal(await page.title(), 'callveil — recording consent');

    // A wrong token is refused with a message.
    await page.getByLabel('Tenant API token').fill('z'.repeat(40));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();

    await page.getByLabel('Tenant API token').fill(TOKENS.acme);
    await page.getByLabel('Tenant API token').press('Enter');
    await page.getByText('Signed in for tenant acme').waitFor();
    await page.locator('#feed-state', { hasText: 'live' }).waitFor();

    const sw = page.getByRole('switch', { name: 'Recording for extension 1001' });
    t.equal(await sw.isChecked(), false, 'off by default');
    await sw.focus();
    await page.keyboard.press('Space');
    await page.getByRole('status').filter({ hasText: 'Recording for extension 1001 is now on.' }).waitFor();
    t.equal(await sw.isChecked(), true);

    const api = await h.call('GET', '/v1/tenants/acme/extensions/1001', { token: TOKENS.acme });
    t.match(
      api.body,
      { extension: '1001', recording: true, changedBy: 'tenant:acme:acme-admin' },
      'the API has the change',
    );
    const entries = readFileSync(join(h.dir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEntry);
    t.match(
      entries,
      [
        {
          actor: 'tenant:acme:acme-admin',
          action: 'consent.set',
          tenant: 'acme',
          subject: '1001',
          detail: { recording: true, previous: false },
        },
      ],
      'the audit log has it',
    );
    t.ok(verifyAuditLog(join(h.dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }).ok);
    await page.locator('#changes li', { hasText: 'Extension 1001: recording on' }).first().waitFor();

    // A change made elsewhere (operator) and live call frames show up without reloading.
    await h.call('PUT', '/v1/tenants/acme/extensions/1002', { token: TOKENS.operator, body: { recording: true } });
    await page.locator('#changes li', { hasText: 'Extension 1002: recording on (operator:ops)' }).first().waitFor();
    await page.getByRole('switch', { name: 'Recording for extension 1002' }).and(page.locator(':checked')).waitFor();
    h.feed.publish('acme', { type: 'call.started', callId: 'pbx-lab-1795418520.155', at: new Date().toISOString() });
    h.feed.publish('acme', {
      type: 'recording',
      callId: 'pbx-lab-1795418520.155',
      outcome: 'blocked',
      kind: 'mixmonitor',
      at: new Date().toISOString(),
    });
    h.feed.publish('globex', { type: 'call.started', callId: 'pbx-lab-1795418523.167', at: new Date().toISOString() });
    await page.locator('#feed li', { hasText: 'recording blocked' }).waitFor();
    const feed = await page.locator('#feed').innerText();
    t.match(feed, /Call pbx-lab-1795418520\.155 started/);
    t.notMatch(feed, /1795418523\.167/, "another tenant's call never reaches the page");
    t.equal(await page.locator('#feed').getAttribute('aria-live'), 'polite');

    // Flip it back off with a click.
    await sw.click();
    await page.getByRole('status').filter({ hasText: 'Recording for extension 1001 is now off.' }).waitFor();
    t.equal(h.registry.isOn('acme', '1001'), false);

    // Kept only where CALLVEIL_SCREENSHOT names a file (to look at the page); otherwise it goes with the profile.
    await page.screenshot({ path: process.env.CALLVEIL_SCREENSHOT ?? join(profile, 'console.png'), fullPage: true });
    // The one refused sign-in shows up as a failed resource load; nothing else may.
    t.same(
      errors.filter((e) => !/status of 401/.test(e)),
      [],
      'no script errors in the page',
    );
  });
}
