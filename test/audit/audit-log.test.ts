import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openAuditLog, verifyAuditLog } from '../../src/audit/audit-log.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir(t, 'audit');

async function sample(name: string): Promise<string> {
  const path = join(dir, name);
  const log = openAuditLog(path, () => new Date('2026-11-23T10:00:00Z'));
  await log.append({
    actor: 'tenant:acme',
    action: 'consent.set',
    tenant: 'acme',
    subject: '1004',
    detail: { recording: false },
  });
  await log.append({
    actor: 'gateway',
    action: 'recording.blocked',
    tenant: 'acme',
    subject: 'pbx-lab-1795418529.189',
    detail: { extension: '1004' },
  });
  await log.append({ actor: 'operator', action: 'key.rotate', tenant: 'globex', detail: { keyId: 'globex-2' } });
  log.close();
  return path;
}

t.test('entries chain; a reopened log continues the chain', async (t) => {
  const path = await sample('ok.jsonl');
  t.same(verifyAuditLog(path), { ok: true, entries: 3 });
  const again = openAuditLog(path);
  const e = await again.append({
    actor: 'operator',
    action: 'reveal',
    tenant: 'acme',
    subject: 'aDpRtp0dx8SV2XWuumxWKg',
  });
  again.close();
  t.equal(e.seq, 4);
  t.same(verifyAuditLog(path), { ok: true, entries: 4 });
});

t.test('verify catches an edited, a removed and a reordered entry', async (t) => {
  const path = await sample('tamper.jsonl');
  const lines = readFileSync(path, 'utf8').trim().split('\n');

  writeFileSync(
    path,
    [lines[0], lines[1]!.replace('"extension":"1004"', '"extension":"1005"'), lines[2]].join('\n') + '\n',
  );
  t.match(verifyAuditLog(path), { ok: false, line: 2, problem: /edited/ });

  writeFileSync(path, [lines[0], lines[2]].join('\n') + '\n');
  t.match(verifyAuditLog(path), { ok: false, line: 2, problem: /removed or reordered/ });

  writeFileSync(path, [lines[0], lines[2], lines[1]].join('\n') + '\n');
  t.match(verifyAuditLog(path), { ok: false, line: 2 });

  writeFileSync(path, [lines[1], lines[2]].join('\n') + '\n');
  t.match(verifyAuditLog(path), { ok: false, line: 1 }, 'the first entry removed');

  t.throws(() => openAuditLog(path), { code: 'GW_CONFIG_INVALID' }, 'a broken log is not appended to');
});

t.test('an entry that looks like it holds a phone number is refused', async (t) => {
  const log = openAuditLog(join(dir, 'guard.jsonl'));
  for (const bad of [
    '+447700900123',
    '07700 900123',
    'caller 0044 7700 900 123',
    '+1 (202) 555-0146',
    '/var/spool/asterisk/monitor/20261123-072113-07700900124-1002-x.wav',
  ]) {
    await t.rejects(
      log.append({ actor: 'gateway', action: 'x', tenant: 'acme', subject: bad }),
      { code: 'GW_PRIVACY_INVALID' },
      bad,
    );
    await t.rejects(log.append({ actor: 'gateway', action: 'x', tenant: 'acme', detail: { note: bad } }), {
      code: 'GW_PRIVACY_INVALID',
    });
  }
  const ok = await log.append({
    actor: 'gateway',
    action: 'x',
    tenant: 'acme',
    subject: 'pbx-lab-1795418529.189',
    detail: { at: '2026-11-23T07:21:13.000Z', ext: '1004' },
  });
  t.equal(ok.seq, 1, 'asterisk ids, ISO times and extensions pass');
  log.close();
  t.notMatch(readFileSync(join(dir, 'guard.jsonl'), 'utf8'), '7700900', 'nothing refused was written');
});
