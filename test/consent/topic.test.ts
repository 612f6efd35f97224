// Consent shared between gateways over `<prefix>.consent` on the test Kafka
// broker (kafkajs over TCP), each gateway wired as startGateway wires it: a
// change on one is enforced by the other (registry and AstDB DBPut), a
// conflicting pair ends the same on both whatever the order, no raw extension
// in keys or values for a non-keep tenant, one audit entry per applied change
// (none for echoes, none again after a restart), changes made while Kafka is
// away published when it is back. Also measures propagation (diagnostic only).
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openAuditLog } from '../../src/audit/audit-log.js';
import { attachConsent, createModel } from '../../src/main.js';
import { createAmiClient } from '../../src/source/ami-client.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';
import { memoryLog } from '../helpers/memory-log.js';
import { configWithStorage } from './stack.js';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { consentKeyOf, derivedIdKey } from '../../src/privacy/ids.js';
import { compareVersions, parseConsentTopicValue } from '../../src/consent/topic.js';
import { splitChangedBy } from '../../src/consent/registry.js';
import { startKafkaBroker, type KafkaTestBroker } from '../helpers/kafka-broker.js';
import { KEY_ACME } from '../helpers/configs.js';
import { tempDir } from '../helpers/temp-dir.js';
import { astdbServer, CONSENT_TOPIC, reopen, startTestGateway, until, type TestGateway } from './topic-stack.js';

async function broker(t: { teardown(fn: () => unknown): void }): Promise<KafkaTestBroker> {
  const b = await startKafkaBroker();
  t.teardown(() => b.close());
  return b;
}

const consentAudits = (gw: TestGateway): AuditEntry[] => {
  const out: AuditEntry[] = [];
  gw.audit.scanRecent((e) => {
    if (e.action === 'consent.set') out.push(e);
  });
  return out;
};

const records = (b: KafkaTestBroker) =>
  b.records(CONSENT_TOPIC).map((r) => ({ key: r.key?.toString() ?? null, value: r.value?.toString() ?? null }));

t.test('a change on one gateway is enforced by the other: registry, AstDB entry, one audit entry', async (t) => {
  const b = await broker(t);
  const srvB = await astdbServer(t);
  const a = await startTestGateway(t, { dir: tempDir(t, 'gw-a'), instance: 'gw-a', brokerAddress: b.address });
  const gb = await startTestGateway(t, {
    dir: tempDir(t, 'gw-b'),
    instance: 'gw-b',
    brokerAddress: b.address,
    astdb: srvB,
  });
  await until('both caught up', () => a.topic!.replicator.stats().caughtUp && gb.topic!.replicator.stats().caughtUp);
  // B has seen extension 1001 in its traffic, so it can map the keyed form.
  gb.registry.noteSeen('acme', '1001');

  await a.registry.set('acme', [{ extension: '1001', recording: true }], 'tenant:acme:acme-admin');
  await until('B has consent for 1001', () => gb.registry.isOn('acme', '1001'));
  await until('B mirrored it', () => srvB.astdb()['callveil/acme/1001'] === '1');
  t.same(srvB.astdb(), { 'callveil/acme/1001': '1' }, "B's AstDB mirror wrote it for the dialplan gate");
  const entryB = gb.registry.entry('acme', '1001')!;
  t.equal(entryB.changedBy, 'tenant:acme:acme-admin@gw-a', 'history names the actor and the gateway it came from');
  t.equal(entryB.changedAt, a.registry.entry('acme', '1001')!.changedAt, 'the same change time on both');

  await a.registry.set('acme', [{ extension: '1001', recording: false }], 'tenant:acme:acme-admin');
  await until('B has 1001 off again', () => !gb.registry.isOn('acme', '1001'));
  await until('B removed it', () => srvB.astdb()['callveil/acme/1001'] === undefined);
  t.same(srvB.astdb(), {}, 'and deleted it when consent went off');

  await a.topic!.replicator.idle();
  await gb.topic!.replicator.idle();
  const auditsB = consentAudits(gb);
  t.equal(auditsB.length, 2, 'B audited each applied change once');
  t.match(auditsB, [
    { actor: 'tenant:acme:acme-admin', tenant: 'acme', subject: '1001', detail: { recording: true, origin: 'gw-a' } },
    { actor: 'tenant:acme:acme-admin', detail: { recording: false, previous: true, origin: 'gw-a' } },
  ]);
  const auditsA = consentAudits(a);
  t.equal(auditsA.length, 2, 'A audited its own two changes, and not their echoes');
  t.ok(
    auditsA.every((e) => e.detail?.origin === undefined),
    'A: its own changes carry no origin',
  );
  t.equal(a.topic!.replicator.stats().applied, 0, 'A applied nothing of its own echoes');
  t.ok(a.topic!.replicator.stats().published >= 2);
  t.equal(
    b.groups().filter((g) => g.startsWith('cv-gw-a-follow-gw-a-')).length,
    1,
    'one follow group per gateway start',
  );
  await a.stop();
  await gb.stop();
  t.same(
    b.groups().filter((g) => g.includes('-follow-')),
    [],
    'a stopped gateway deletes its follow group (it holds no offsets)',
  );
});

t.test('the topic holds no raw extension for a token tenant; keep tenants carry theirs', async (t) => {
  const b = await broker(t);
  const a = await startTestGateway(t, {
    dir: tempDir(t, 'gw-a'),
    instance: 'gw-a',
    brokerAddress: b.address,
    keep: ['globex'],
  });
  await until('caught up', () => a.topic!.replicator.stats().caughtUp);
  const acmeExts = ['1001', '1002', '4711', '987654'];
  await a.registry.set(
    'acme',
    acmeExts.map((extension) => ({ extension, recording: true })),
    'tenant:acme:acme-admin',
  );
  await a.registry.set('globex', [{ extension: '2001', recording: true }], 'tenant:globex:globex-admin');
  await b.waitForRecords(5, 10_000, CONSENT_TOPIC);
  const recs = records(b);
  const acme = recs.filter((r) => r.key!.startsWith('acme/'));
  t.equal(acme.length, 4);
  const bytes = acme.map((r) => `${r.key}\n${r.value}`).join('\n');
  for (const ext of acmeExts) t.notOk(bytes.includes(ext), `no ${ext} in acme's keys or values`);
  t.ok(
    acme.every((r) => /^acme\/[a-p]{32}$/.test(r.key!)),
    'acme keys are <tenant>/<keyed form>',
  );
  const idKey = derivedIdKey(Buffer.from(KEY_ACME, 'hex'));
  t.ok(
    acme.some((r) => r.key === `acme/${consentKeyOf(idKey, 'acme', '1001')}`),
    'the keyed form is the HMAC under the tenant id key (computable by every gateway of the tenant)',
  );
  const globex = recs.filter((r) => r.key!.startsWith('globex/'));
  t.same(
    globex.map((r) => r.key),
    ['globex/2001'],
    'a keep tenant carries its extension (the scan above would see it)',
  );
  const v = parseConsentTopicValue(acme[0]!.value!);
  t.match(v, { recording: true, actor: 'tenant:acme:acme-admin', origin: 'gw-a' });
  t.equal(v!.at, new Date(v!.version).toISOString());
});

t.test('conflict rule: a conflicting pair ends the same on both, whichever is read first', async (t) => {
  // Same millisecond on both clocks: the greater origin (gw-b) wins; then a later change wins whatever the origin.
  for (const first of ['gw-a', 'gw-b'] as const) {
    await t.test(`${first} publishes first`, async (t) => {
      const b = await broker(t);
      let clock = new Date('2026-12-02T10:00:00.000Z');
      const mk = (instance: 'gw-a' | 'gw-b') =>
        startTestGateway(t, {
          dir: tempDir(t, instance),
          instance,
          brokerAddress: b.address,
          now: () => clock,
          topic: false,
        });
      const ga = await mk('gw-a');
      const gb = await mk('gw-b');
      for (const gw of [ga, gb]) gw.registry.noteSeen('acme', '1001');
      const agree = () => {
        const [ea, eb] = [ga.registry.entry('acme', '1001'), gb.registry.entry('acme', '1001')];
        return (
          ea !== undefined &&
          eb !== undefined &&
          ea.recording === eb.recording &&
          ea.changedAt === eb.changedAt &&
          splitChangedBy(ea.changedBy!).actor === splitChangedBy(eb.changedBy!).actor
        );
      };
      // Both start from the same state: 1001 on, made on gw-a.
      await ga.registry.set('acme', [{ extension: '1001', recording: true }], 'tenant:acme:acme-admin');
      ga.startTopic();
      gb.startTopic();
      await until('both have the baseline', agree);
      for (const gw of [ga, gb]) await gw.stop();

      // Then, at the same millisecond, each changes it while neither reads the topic.
      clock = new Date('2026-12-02T10:00:05.000Z');
      const ga2 = await startTestGateway(t, { ...reopen(ga), now: () => clock, topic: false });
      const gb2 = await startTestGateway(t, { ...reopen(gb), now: () => clock, topic: false });
      await ga2.registry.set('acme', [{ extension: '1001', recording: false }], 'tenant:acme:acme-admin');
      await gb2.registry.set('acme', [{ extension: '1001', recording: true }], 'operator:ops');
      const [one, two] = first === 'gw-a' ? [ga2, gb2] : [gb2, ga2];
      one.startTopic();
      await until('first published', () => one.topic!.replicator.stats().published === 1);
      two.startTopic();
      const agree2 = () => {
        const [ea, eb] = [ga2.registry.entry('acme', '1001'), gb2.registry.entry('acme', '1001')];
        return (
          ea?.recording === eb?.recording && ea?.changedAt === eb?.changedAt && ea?.changedBy === 'operator:ops@gw-b'
        );
      };
      await until('both agree on the winner', agree2);
      await ga2.topic!.replicator.idle();
      await gb2.topic!.replicator.idle();
      t.equal(ga2.registry.isOn('acme', '1001'), true, 'gw-b (greater origin, same ms) wins on gw-a');
      t.equal(gb2.registry.isOn('acme', '1001'), true, 'and on gw-b');
      await until(
        'the topic ends with the winner',
        () => parseConsentTopicValue(records(b).at(-1)!.value!)?.origin === 'gw-b',
      );
      t.match(
        parseConsentTopicValue(records(b).at(-1)!.value!),
        { origin: 'gw-b', recording: true },
        'the last record of the key is the winner (what compaction keeps, so a new gateway reads the same)',
      );
      const lost = consentAudits(ga2).filter((e) => e.detail?.origin === 'gw-b');
      t.equal(lost.length, 1, 'gw-a audited the winning remote change once');

      // A later change wins whatever its origin: gw-a, stamped after the change it replaces (the registry's clock rule).
      await ga2.registry.set('acme', [{ extension: '1001', recording: false }], 'tenant:acme:acme-admin');
      await until('gw-b follows', () => !gb2.registry.isOn('acme', '1001'));
      t.equal(
        Date.parse(ga2.registry.entry('acme', '1001')!.changedAt!),
        clock.getTime() + 1,
        'never at or before the change it replaces, even with the clock standing still',
      );
    });
  }
});

t.test('compareVersions: later wins, then greater origin, then off; a change against itself is 0', async (t) => {
  const v = (ms: number, origin: string, recording: boolean) => ({ ms, origin, recording });
  t.ok(compareVersions(v(2, 'a', true), v(1, 'z', false)) > 0);
  t.ok(compareVersions(v(1, 'b', true), v(1, 'a', false)) > 0);
  t.ok(compareVersions(v(1, 'a', false), v(1, 'a', true)) > 0, 'same time and origin: off wins');
  t.equal(compareVersions(v(1, 'a', true), v(1, 'a', true)), 0);
  // Antisymmetric: the pair is decided alike on both sides.
  for (const [x, y] of [
    [v(1, 'a', true), v(1, 'b', false)],
    [v(5, 'b', true), v(4, 'a', true)],
  ] as const)
    t.equal(Math.sign(compareVersions(x, y)), -Math.sign(compareVersions(y, x)));
});

t.test(
  'a restart reads the topic again: nothing applied or audited twice; the local store serves meanwhile',
  async (t) => {
    const b = await broker(t);
    const dirB = tempDir(t, 'gw-b');
    const a = await startTestGateway(t, { dir: tempDir(t, 'gw-a'), instance: 'gw-a', brokerAddress: b.address });
    let gb = await startTestGateway(t, { dir: dirB, instance: 'gw-b', brokerAddress: b.address });
    gb.registry.noteSeen('acme', '1001');
    gb.registry.noteSeen('acme', '1002');
    await until('both caught up', () => a.topic!.replicator.stats().caughtUp && gb.topic!.replicator.stats().caughtUp);
    await a.registry.set(
      'acme',
      [
        { extension: '1001', recording: true },
        { extension: '1002', recording: true },
      ],
      'tenant:acme:acme-admin',
    );
    await until('B has both', () => gb.registry.isOn('acme', '1002') && gb.registry.isOn('acme', '1001'));
    await gb.topic!.replicator.idle();
    t.equal(consentAudits(gb).length, 2);
    await gb.stop();

    b.setFault({ kind: 'refuse' });
    gb = await startTestGateway(t, { dir: dirB, instance: 'gw-b', brokerAddress: b.address });
    t.ok(gb.registry.isOn('acme', '1001'), 'Kafka away: the restarted gateway runs on its local store');
    t.notOk(gb.topic!.replicator.stats().caughtUp);
    b.setFault({ kind: 'none' });
    await until('caught up after Kafka came back', () => gb.topic!.replicator.stats().caughtUp, 15_000);
    await gb.topic!.replicator.idle();
    t.equal(consentAudits(gb).length, 2, 'the same versions read again are not audited again');
    t.equal(gb.topic!.replicator.stats().applied, 0);
    t.ok(gb.topic!.replicator.stats().duplicates >= 2, 'they were recognised as already applied');
    t.equal(records(b).length, 2, 'and nothing was published again');
  },
);

t.test('changes made while Kafka is away are published when it is back, nothing lost', async (t) => {
  const b = await broker(t);
  const a = await startTestGateway(t, { dir: tempDir(t, 'gw-a'), instance: 'gw-a', brokerAddress: b.address });
  const gb = await startTestGateway(t, { dir: tempDir(t, 'gw-b'), instance: 'gw-b', brokerAddress: b.address });
  const exts = ['1001', '1002', '1003', '1004', '1005'];
  for (const e of exts) gb.registry.noteSeen('acme', e);
  await until('both caught up', () => a.topic!.replicator.stats().caughtUp && gb.topic!.replicator.stats().caughtUp);

  b.setFault({ kind: 'refuse' });
  for (const extension of exts)
    await a.registry.set('acme', [{ extension, recording: true }], 'tenant:acme:acme-admin');
  await a.registry.set('acme', [{ extension: '1003', recording: false }], 'tenant:acme:acme-admin');
  t.ok(
    exts.every((e) => e === '1003' || a.registry.isOn('acme', e)),
    'A enforces its own changes meanwhile',
  );
  await new Promise((r) => setTimeout(r, 300));
  t.ok(a.topic!.replicator.stats().outbox > 0, 'the outbox counts what is not on the topic yet');
  t.equal(records(b).length, 0, 'nothing reached the broker while it refused');

  b.setFault({ kind: 'none' });
  await until(
    () =>
      `B has every change (A ${JSON.stringify(a.topic!.replicator.stats())}, B ${JSON.stringify(gb.topic!.replicator.stats())})`,
    () => exts.every((e) => gb.registry.isOn('acme', e) === (e !== '1003')),
    20_000,
  );
  await a.topic!.replicator.idle();
  await until('A outbox empty', () => a.topic!.replicator.stats().outbox === 0);
  // 1003 went on and off while Kafka was away: off is what no record means, so nothing had to be published for it.
  t.equal(gb.registry.entry('acme', '1003'), undefined);
  t.equal(records(b).filter((r) => r.value?.includes('"recording":false')).length, 0);

  // A stopped gateway's changes: published at its next start, once it has read the topic.
  await a.stop();
  const a2 = await startTestGateway(t, {
    dir: a.loaded.config.storage.dir,
    instance: 'gw-a',
    brokerAddress: b.address,
    topic: false,
  });
  await a2.registry.set('acme', [{ extension: '1001', recording: false }], 'tenant:acme:acme-admin');
  a2.startTopic();
  await until('B sees the change made while A had no topic', () => !gb.registry.isOn('acme', '1001'), 20_000);
  t.pass('published after the restart');
});

t.test('an extension B does not know yet is kept keyed and applied once B sees it', async (t) => {
  const b = await broker(t);
  const a = await startTestGateway(t, { dir: tempDir(t, 'gw-a'), instance: 'gw-a', brokerAddress: b.address });
  const gb = await startTestGateway(t, { dir: tempDir(t, 'gw-b'), instance: 'gw-b', brokerAddress: b.address });
  await until('both caught up', () => a.topic!.replicator.stats().caughtUp && gb.topic!.replicator.stats().caughtUp);
  await a.registry.set('acme', [{ extension: '3333', recording: true }], 'tenant:acme:acme-admin');
  await until('B has it unmapped', () => gb.topic!.replicator.stats().unmapped === 1);
  t.notOk(gb.registry.isOn('acme', '3333'), 'not applied while B cannot tell which extension it is');
  gb.registry.noteSeen('acme', '3333');
  await until('applied once seen', () => gb.registry.isOn('acme', '3333'));
  t.equal(gb.topic!.replicator.stats().unmapped, 0);
  await gb.topic!.replicator.idle();
  t.equal(consentAudits(gb).length, 1, 'audited once');
});

t.test('propagation: change on A -> applied on B (diagnostic, not asserted on time)', async (t) => {
  const b = await broker(t);
  const a = await startTestGateway(t, { dir: tempDir(t, 'gw-a'), instance: 'gw-a', brokerAddress: b.address });
  const gb = await startTestGateway(t, { dir: tempDir(t, 'gw-b'), instance: 'gw-b', brokerAddress: b.address });
  const N = 200;
  const exts = Array.from({ length: 20 }, (_, i) => String(5000 + i));
  for (const e of exts) gb.registry.noteSeen('acme', e);
  await until('both caught up', () => a.topic!.replicator.stats().caughtUp && gb.topic!.replicator.stats().caughtUp);
  let waiting: { ext: string; on: boolean; resolve: () => void } | undefined;
  gb.registry.onChange((c) => {
    if (waiting !== undefined && c.extension === waiting.ext && c.recording === waiting.on) waiting.resolve();
  });
  const ms: number[] = [];
  for (let i = 0; i < N; i++) {
    const ext = exts[i % exts.length]!;
    const on = Math.floor(i / exts.length) % 2 === 0;
    const applied = new Promise<void>((resolve) => (waiting = { ext, on, resolve }));
    const t0 = performance.now();
    await a.registry.set('acme', [{ extension: ext, recording: on }], 'tenant:acme:acme-admin');
    await applied;
    ms.push(performance.now() - t0);
  }
  ms.sort((x, y) => x - y);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!.toFixed(1);
  t.comment(
    `consent propagation A -> B over ${N} changes: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${ms.at(-1)!.toFixed(1)} ms`,
  );
  t.equal(ms.length, N, 'every change reached B');
  await gb.topic!.replicator.idle();
  t.equal(consentAudits(gb).length, N, 'one audit entry per applied change');
});

t.test("a shredded tenant's consent is no longer in force: not judged on, so not mirrored or shared", async (t) => {
  const dir = tempDir(t, 'shredded');
  mkdirSync(join(dir, 'shredded'), { recursive: true });
  writeFileSync(
    join(dir, 'shredded', 'acme.json'),
    JSON.stringify({
      version: 1,
      tenant: 'acme',
      shreddedAt: '2026-12-01T00:00:00.000Z',
      shreddedBy: 'cli:ops',
      keySet: null,
      keyIds: ['acme-1'],
    }) + '\n',
  );
  const loaded = configWithStorage(dir);
  const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const client = createAmiClient({ host: '127.0.0.1', port: 1, username: 'gw', secret: 'pw', reconnect: false });
  const { log } = memoryLog();
  const parts = attachConsent(loaded, client, createModel(loaded), audit, log);
  t.notOk(parts.registry.hasTenant('acme'), 'acme is not a consent tenant any more: every recording of it is off');
  t.ok(parts.registry.hasTenant('globex'));
  t.same(parts.registry.tenants(), ['globex'], 'the AstDB mirror and the consent topic see only globex');
});
