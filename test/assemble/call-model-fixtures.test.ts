// The call model on every real capture (and the hand-written Asterisk 11
// session), against the expected tables derived from Asterisk's own
// Master.csv, cel.csv and the sipp plan (test/fixtures/ami/README.md): leg by
// leg and call by call. Then the same captures as other PBXs send them
// (other system names, numbers in ids, Cdr Linkedid, no Linkedid, CEL only).
import t from 'tap';
import type { RawCall } from '../../src/assemble/raw-cdr.js';
import { CAPTURES, SYNTHETIC_CAPTURES, readCapture, readMasterCsv } from '../helpers/ground-truth.js';
import {
  celOnly,
  cdrWithLinkedid,
  DIGIT_FIRST_HOSTNAME,
  DOTTED_SYSTEM_NAME,
  plantedNumberVariants,
  systemNameVariant,
  withoutLinkedid,
} from '../helpers/capture-variants.js';
import { legsByUniqueid, readExpected } from '../helpers/expected-tables.js';
import { labRules } from '../helpers/lab-rules.js';
import { expectedPartyLabel, modelPartyLabel, runModel } from '../helpers/model-run.js';

const RULES = labRules();

const transfersOf = (c: RawCall) =>
  c.transfers.map((x) => `${x.kind}:${modelPartyLabel(x.from)}>${modelPartyLabel(x.to)}`).join(',');

/** What a call record says, in one comparable line. */
const signature = (c: RawCall) =>
  [
    c.direction,
    c.outcome,
    modelPartyLabel(c.caller),
    modelPartyLabel(c.firstCalled),
    modelPartyLabel(c.answeredBy),
    c.queue?.name ?? '',
    transfersOf(c),
    c.legs.length,
  ].join('|');

for (const name of [...CAPTURES, ...SYNTHETIC_CAPTURES]) {
  t.test(`${name}: every leg and every call as the ground truth has them`, async (t) => {
    const table = readExpected(name);
    const run = runModel(readCapture(name), RULES.callModel);
    t.equal(run.legs.length, table.legs.length, 'one leg record per Cdr event (Master.csv row)');
    const expectedLegs = legsByUniqueid(table);
    const seen = new Map<string, number>();
    for (const leg of run.legs) {
      const k = seen.get(leg.legId) ?? 0;
      seen.set(leg.legId, k + 1);
      const e = expectedLegs.get(leg.legId)?.[k];
      if (e === undefined) {
        t.fail(`leg ${leg.legId} #${k + 1} is not in the ground truth`);
        continue;
      }
      t.same(
        {
          direction: leg.direction,
          lastApp: leg.lastApp || null,
          origin: leg.origin ?? null,
          answeredBy: leg.answeredBy ?? null,
          queue: leg.queue ?? null,
        },
        {
          direction: e.direction,
          lastApp: e.lastApp,
          origin: e.originatingExtension,
          answeredBy: e.answeringExtension,
          queue: e.queue,
        },
        `leg ${leg.legId} #${k + 1}`,
      );
    }
    t.equal(run.calls.length, table.calls.length, 'one call record per distinct linkedid');
    const calls = new Map(run.calls.map((c) => [c.callId, c]));
    for (const e of table.calls) {
      const c = calls.get(e.linkedid);
      if (c === undefined) {
        t.fail(`no call record for ${e.linkedid}`);
        continue;
      }
      t.same(
        {
          direction: c.direction,
          outcome: c.outcome,
          caller: modelPartyLabel(c.caller),
          firstCalled: modelPartyLabel(c.firstCalled),
          answeredBy: modelPartyLabel(c.answeredBy),
          queue: c.queue?.name ?? null,
          queueWait: c.queue?.waitSec ?? null,
          queueAnsweredBy: c.queue?.answeredBy ?? null,
          records: c.legs.length,
          transfers: transfersOf(c),
        },
        {
          direction: e.direction,
          outcome: e.outcome,
          caller: expectedPartyLabel(e.caller),
          firstCalled: expectedPartyLabel(e.firstCalled),
          answeredBy: expectedPartyLabel(e.answeredBy),
          queue: e.queue?.name ?? null,
          queueWait: e.queue?.amiHoldTime ?? null,
          queueAnsweredBy: e.queue?.answeredBy ?? null,
          records: e.records,
          transfers: e.transfers
            .map((x) => `${x.kind}:${expectedPartyLabel(x.transferer)}>${expectedPartyLabel(x.target)}`)
            .join(','),
        },
        `call ${e.linkedid}`,
      );
    }
  });
}

for (const name of CAPTURES) {
  t.test(`${name} as other PBXs send it: the same calls`, async (t) => {
    const full = runModel(readCapture(name), RULES.callModel);
    const byId = new Map(full.calls.map((c) => [c.callId, signature(c)]));
    const sorted = (calls: readonly RawCall[]) => calls.map(signature).sort();

    for (const v of [
      systemNameVariant(name, DIGIT_FIRST_HOSTNAME),
      systemNameVariant(name, DOTTED_SYSTEM_NAME),
      ...plantedNumberVariants(name),
    ]) {
      const run = runModel(v.bytes, RULES.callModel);
      t.equal(run.legs.length, full.legs.length, `system name ${v.systemName}: every Cdr is a leg (none lost)`);
      t.same(sorted(run.calls), sorted(full.calls), `system name ${v.systemName}: the same calls`);
    }

    const withLinkedid = runModel(cdrWithLinkedid(readCapture(name), readMasterCsv(name)), RULES.callModel);
    t.same(
      withLinkedid.calls.map((c) => [c.callId, signature(c)]),
      full.calls.map((c) => [c.callId, byId.get(c.callId)]),
      'Cdr events carrying their Linkedid ([mappings]): the same calls under the same ids',
    );

    const noLinkedid = runModel(withoutLinkedid(readCapture(name)), RULES.callModel);
    t.same(
      new Map(noLinkedid.calls.map((c) => [c.callId, signature(c)])),
      byId,
      'no Linkedid on channel events (Asterisk 11 style): calls stitched from Dial, bridges and CEL, the same',
    );
  });
}

// CEL-only PBXs (cel_manager, no cdr_manager, no channel events). CEL does
// not say everything channel events do: without APP_START events it names no
// queue (a queue shows only through its members' lines, so a caller gone
// before any member rang shows no queue), it shows the application that
// answered as Answer, a DID routed on to an extension only as the DID, a
// dial string only while the Dial runs, and no dial between the halves of an
// Originated Local channel. So the call set, each call's direction and its
// answering party must match, and its outcome and queue except where the
// ground truth says CEL cannot see them.
for (const name of CAPTURES) {
  t.test(`${name} from CEL events alone: the same calls`, async (t) => {
    const full = runModel(readCapture(name), RULES.callModel);
    const cel = runModel(celOnly(readCapture(name)), RULES.callModel);
    const truth = new Map(readExpected(name).calls.map((c) => [c.linkedid, c]));
    const invisible = (id: string) => {
      const e = truth.get(id);
      return (
        (e?.queue !== null && e?.queue !== undefined && e.queue.memberAttempts.length === 0) ||
        (e?.origin === 'originate' && e.caller.kind === 'external')
      );
    };
    const celById = new Map(cel.calls.map((c) => [c.callId, c]));
    t.same([...celById.keys()].sort(), full.calls.map((c) => c.callId).sort(), 'every call, under its id');
    t.ok(cel.legs.length >= cel.calls.length, `leg records from CEL (${cel.legs.length}), source: cel`);
    let skipped = 0;
    for (const f of full.calls) {
      const c = celById.get(f.callId);
      if (c === undefined) continue;
      t.equal(c.direction, f.direction, `${f.callId}: direction`);
      t.equal(modelPartyLabel(c.answeredBy), modelPartyLabel(f.answeredBy), `${f.callId}: answered by`);
      if (invisible(f.callId)) {
        skipped++;
        continue;
      }
      t.equal(c.queue !== null, f.queue !== null, `${f.callId}: queue or not`);
      t.equal(c.outcome, f.outcome, `${f.callId}: outcome`);
    }
    t.comment(`${skipped} calls whose queue or Originate CEL cannot show: outcome and queue not compared`);
  });
}
