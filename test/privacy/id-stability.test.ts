// The same CDR gets the same id, whatever happens to the gateway: a replay
// twice gives identical ids, and a restart between the two Cdr events of one
// channel (a failed Dial, then Hangup()) gives the two distinct ids the
// uninterrupted run gives. Ids are derived from the Cdr event alone (README
// "Record ids"), never from a counter in memory.
import t from 'tap';
import { createCallModel } from '../../src/assemble/call-model.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import { CAPTURES, readCapture, readMasterCsv } from '../helpers/ground-truth.js';
import { twoTenantConfig } from '../helpers/configs.js';
import { messagesOf } from '../helpers/model-run.js';

const loaded = twoTenantConfig();

/** Record ids by the raw Uniqueid of their leg, in order, from one gateway life fed `messages`. */
function life(messages: readonly AmiMessage[], flush = true): Map<string, string[]> {
  const model = createCallModel({ rules: () => loaded.privacy.callModel, timeZone: 'UTC' });
  const sanitise = createSanitiser(loaded.privacy);
  const ids = new Map<string, string[]>();
  model.onLeg((raw) => {
    const r = sanitise(raw);
    // Placeholders for channels a restarted gateway saw end without their CDR (complete: false) are not CDRs.
    if (r.ok && r.record.complete !== false) ids.set(raw.legId, [...(ids.get(raw.legId) ?? []), r.record.id]);
  });
  for (const m of messages) model.handle(m);
  if (flush) model.flush();
  return ids;
}

const all = (m: Map<string, string[]>) => [...m.values()].flat();

for (const name of CAPTURES) {
  t.test(`${name}: ids are the same on a second replay, and across a restart between two Cdr events`, async (t) => {
    const messages = messagesOf(readCapture(name));
    const first = life(messages);
    const second = life(messages);
    t.same(all(second), all(first), 'a replay twice gives identical ids');
    t.equal(new Set(all(first)).size, all(first).length, 'every record its own id');

    // Channels with two CDRs (Master.csv has two rows for their uniqueid).
    const counts = new Map<string, number>();
    for (const row of readMasterCsv(name)) counts.set(row.uniqueid, (counts.get(row.uniqueid) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n >= 2).map(([u]) => u);
    if (twice.length === 0) {
      t.pass('no channel with two CDRs in this capture');
      return;
    }
    const uid = twice[0]!;
    const cut = messages.findIndex((m) => m['event'] === 'Cdr' && m['uniqueid'] === uid) + 1;
    t.ok(cut > 0, `the first Cdr of ${twice.length} channel(s) with two`);
    // The gateway is killed right after the first Cdr (no flush), and a new one reads the rest.
    const before = life(messages.slice(0, cut), false);
    const after = life(messages.slice(cut));
    const across = [...(before.get(uid) ?? []), ...(after.get(uid) ?? [])];
    t.equal(across.length, first.get(uid)!.length, 'both CDRs of the channel published');
    t.same(across, first.get(uid), 'the same two distinct ids as without the restart');
    t.equal(new Set(across).size, across.length, 'and they differ');
  });
}
