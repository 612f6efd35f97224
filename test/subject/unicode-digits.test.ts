// One subscriber, one token, in any script: a caller whose number Asterisk
// sent in fullwidth or Arabic-Indic digits (or with Unicode spaces and
// dashes) is keyed exactly as the ASCII number, so suppression, export and
// erasure, which all work on tokens, find those records too.
import t from 'tap';
import type { RawCdr } from '../../src/assemble/raw-cdr.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import { subjectMatcher } from '../../src/subject/export.js';
import { subjectRecordMatcher } from '../../src/subject/erase.js';
import { createSuppressionList } from '../../src/subject/suppression.js';
import { openSuppressionStore } from '../../src/subject/suppression-store.js';
import { subjectTokens } from '../../src/subject/tokens.js';
import { twoTenantConfig } from '../helpers/configs.js';
import { tempDir } from '../helpers/temp-dir.js';

const ASCII = '+447700900123';
const VARIANTS: Record<string, string> = {
  fullwidth: '\uff0b\uff14\uff14\uff17\uff17\uff10\uff10\uff19\uff10\uff10\uff11\uff12\uff13',
  'arabic-indic': '+\u0664\u0664\u0667\u0667\u0660\u0660\u0669\u0660\u0660\u0661\u0662\u0663',
  'extended arabic-indic, national': '\u06f0\u06f7\u06f7\u06f0\u06f0 \u06f9\u06f0\u06f0\u06f1\u06f2\u06f3',
  'no-break space and en dash': '+44\u00a07700\u2013900123',
  devanagari: '+\u096a\u096a\u096d\u096d\u0966\u0966\u096f\u0966\u0966\u0967\u0968\u0969',
};

function raw(source: string, n: number): RawCdr {
  const id = `pbx-lab-1795418472.${n}`;
  return {
    legId: id,
    callId: id,
    idTuple: {
      uniqueId: id,
      start: '2026-11-18 10:00:00',
      answer: '2026-11-18 10:00:03',
      end: '2026-11-18 10:00:12',
      duration: '12',
      billsec: '9',
      disposition: 'ANSWERED',
      dstChannel: 'SIP/1001-00000025',
      lastApp: 'Dial',
    },
    lastApp: 'Dial',
    tenantHint: '',
    accountCode: 'acme',
    source,
    destination: '1001',
    dialled: '1001',
    disposition: 'ANSWERED',
    durationSec: 12,
    billSec: 9,
    startedAt: '2026-11-18T10:00:00.000Z',
    answeredAt: '2026-11-18T10:00:03.000Z',
    endedAt: '2026-11-18T10:00:12.000Z',
  };
}

t.test('every script gives the ASCII number its token, and every subject tool finds the record', async (t) => {
  const loaded = twoTenantConfig();
  const policy = loaded.privacy.tenants.get('acme')!;
  const sanitise = createSanitiser(loaded.privacy);
  const subject = subjectTokens(policy, ASCII)!;
  const exportMatch = subjectMatcher(subject);
  const eraseMatch = subjectRecordMatcher(subject);
  const token = subject.keys[0]!.token;
  let n = 1;
  for (const [script, number] of Object.entries(VARIANTS)) {
    const r = sanitise(raw(number, n++));
    if (!r.ok) {
      t.fail(`${script}: withheld (${r.reason})`);
      continue;
    }
    t.equal(r.record.caller.kind, 'e164', `${script}: a subscriber number, not invalid text`);
    t.equal(r.record.caller.token, token, `${script}: the same token as ${ASCII}`);
    t.ok(exportMatch.matches(r.record), `${script}: subject export finds it`);
    t.ok(eraseMatch(JSON.stringify(r.record)), `${script}: erasure finds it in the spool`);
    t.same(
      subjectTokens(policy, number)?.keys.map((k) => k.token),
      subject.keys.map((k) => k.token),
      `${script}: typed by a DPO, the same tokens`,
    );
  }
});

t.test('suppression added with the ASCII number withholds the record of a fullwidth caller', async (t) => {
  const loaded = twoTenantConfig();
  const policy = loaded.privacy.tenants.get('acme')!;
  const dir = tempDir(t, 'unicode-suppress');
  const list = createSuppressionList({
    store: openSuppressionStore(dir),
    audit: { append: async () => ({}) as never },
  });
  const subject = subjectTokens(policy, '07700 900123')!;
  await list.add(
    'acme',
    subject.keys.map((k) => ({ kid: k.keyId, token: k.token })),
    'number',
    'test',
  );
  const sanitise = createSanitiser(loaded.privacy, Date.now, list);
  const r = sanitise(raw(VARIANTS.fullwidth!, 99));
  t.same([r.ok, r.ok ? undefined : r.reason], [false, 'suppressed']);
  const other = sanitise(raw('+447700900124', 100));
  t.ok(other.ok, 'another subscriber is published');
});
