import t from 'tap';
import { CAPTURES, SYSTEM_NAMES, readCapture, readCelCsv, readMasterCsv, type CaptureName } from './ground-truth.js';
import { scanBuffers } from './leak-scanner.js';
import { readExpected } from './expected-tables.js';
import {
  DIGIT_FIRST_HOSTNAME,
  DOTTED_SYSTEM_NAME,
  cdrWithLinkedid,
  celOnly,
  dropEvents,
  eventName,
  fictionalNumberForSeq,
  header,
  idsIn,
  joinCapture,
  messageHeaders,
  plantedNeedles,
  plantedNumberVariants,
  rewriteIds,
  splitCapture,
  systemNameVariant,
  withoutLinkedid,
} from './capture-variants.js';

const SMALL = CAPTURES.filter((c) => c !== 'load');
const tokenOf = (name: string): RegExp =>
  new RegExp(`(?<![A-Za-z0-9])${name.replace(/\./g, '\\.')}(?![A-Za-z0-9])`, 'g');
const count = (text: string, re: RegExp): number => [...text.matchAll(re)].length;
const events = (bytes: Buffer, name: string): string[] =>
  splitCapture(bytes).messages.filter((m) => eventName(m) === name);

t.test('split and join give back every capture byte for byte', async (t) => {
  for (const name of CAPTURES) {
    const bytes = readCapture(name);
    const parts = splitCapture(bytes);
    t.match(parts.greeting, /^Asterisk Call Manager\/\d+\.\d+\.\d+$/, `${name} greeting`);
    t.ok(joinCapture(parts).equals(bytes), `${name} round trip`);
  }
  t.throws(() => splitCapture(Buffer.from('HTTP/1.1 200 OK\r\n\r\n')), /no greeting/);
  t.throws(() => splitCapture(Buffer.from('Asterisk Call Manager/1.3\r\nEvent: Dial\r\n')), /complete message/);
  t.same(messageHeaders('Event: CEL\r\nExtra: {"a": 1}\r\nOutput: x: y'), [
    ['Event', 'CEL'],
    ['Extra', '{"a": 1}'],
    ['Output', 'x: y'],
  ]);
});

t.test('rewriteIds touches ids only, wherever they sit', async (t) => {
  const text =
    'Uniqueid: pbx-lab-1795418562.216\r\nSystemName: pbx-lab\r\nValue: /monitor/x-1001-pbx-lab-1795418562.216.wav\r\n' +
    'Extra: {"transferee_channel_uniqueid":"pbx-lab-1795418562.216"}\r\nOther: pbx-lab3-1796186078.202';
  const out = rewriteIds(text, 'pbx-lab', (id) => ({ ...id, system: 'X' }));
  t.equal(count(out, /X-1795418562\.216/g), 3);
  t.match(out, /SystemName: pbx-lab\r\n/, 'the SystemName header is not an id');
  t.match(out, /pbx-lab3-1796186078\.202/, 'another system name is left alone');
  t.same(idsIn(text, 'pbx-lab3'), ['pbx-lab3-1796186078.202']);
});

for (const systemName of [DIGIT_FIRST_HOSTNAME, DOTTED_SYSTEM_NAME]) {
  t.test(`system name rewritten to ${systemName}, ground truth with it`, async (t) => {
    for (const name of SMALL) {
      const original = SYSTEM_NAMES[name];
      const before = readCapture(name).toString('latin1');
      const v = systemNameVariant(name, systemName);
      const after = v.bytes.toString('latin1');
      t.equal(count(after, tokenOf(original)), 0, `${name}: ${original} is gone`);
      t.equal(idsIn(after, systemName).length, idsIn(before, original).length, `${name}: every id rewritten`);
      const parts = splitCapture(v.bytes);
      t.equal(parts.messages.length, splitCapture(readCapture(name)).messages.length, `${name}: same messages`);
      const names = new Set(parts.messages.flatMap((m) => header(m, 'SystemName') ?? []));
      t.same([...names], [systemName], `${name}: SystemName headers`);
      const back = systemNameVariant(name, systemName);
      t.ok(
        Buffer.from(
          rewriteIds(back.bytes.toString('latin1'), systemName, (id) => ({ ...id, system: original })).replace(
            new RegExp(`\\r\\nSystemName: ${systemName.replace(/\./g, '\\.')}\\r\\n`, 'g'),
            `\r\nSystemName: ${original}\r\n`,
          ),
          'latin1',
        ).equals(readCapture(name)),
        `${name}: renaming back restores the capture`,
      );
      const cdrIds = events(v.bytes, 'Cdr').map((m) => header(m, 'UniqueID'));
      t.same(
        cdrIds.sort(),
        v
          .masterCsv()
          .map((r) => r.uniqueid)
          .sort(),
        `${name}: Cdr UniqueIDs are the rewritten Master.csv`,
      );
      const expected = v.expected();
      t.equal(expected.systemName, systemName);
      t.ok(
        expected.legs.every((l) => l.uniqueid.startsWith(`${systemName}-`) && l.linkedid.startsWith(`${systemName}-`)),
        `${name}: expected legs carry the new ids`,
      );
      t.equal(expected.calls.length, readExpected(name).calls.length);
    }
  });
}

t.test('the load capture renames too (57 MB)', async (t) => {
  const v = systemNameVariant('load', DIGIT_FIRST_HOSTNAME);
  t.equal(count(v.bytes.toString('latin1'), tokenOf('pbx-lab')), 0);
  t.equal(events(v.bytes, 'Cdr').length, v.masterCsv().length);
});

t.test(
  'numbers planted in ids: distinct ids stay distinct and the leak scanner sees each planted number',
  async (t) => {
    const name: CaptureName = 'basic-internal';
    const originalText = readCapture(name).toString('latin1');
    const distinct = new Set(idsIn(originalText, 'pbx-lab')).size;
    const variants = plantedNumberVariants(name);
    t.same(
      variants.map((v) => v.label),
      ['planted:system-name', 'planted:originate-ids', 'planted:us-epoch', 'planted:number-sequence'],
    );
    for (const v of variants) {
      const text = v.bytes.toString('latin1');
      t.ok(v.planted.length > 0, `${v.label}: lists what it planted`);
      const seen = scanBuffers(plantedNeedles(v), [{ label: v.label, data: v.bytes }]);
      t.same(new Set(seen.map((l) => l.needle)), new Set(v.planted), `${v.label}: every planted number found`);
      t.same(
        scanBuffers(plantedNeedles(v), [{ label: 'original', data: readCapture(name) }]),
        [],
        'not in the original',
      );
      const ids = new Set([...text.matchAll(/(?:Uniqueid|Linkedid|UniqueID|LinkedID): (.*)\r\n/g)].map((m) => m[1]));
      t.equal(
        ids.size,
        new Set([...originalText.matchAll(/(?:Uniqueid|Linkedid|UniqueID|LinkedID): (.*)\r\n/g)].map((m) => m[1])).size,
        `${v.label}: as many distinct ids`,
      );
      t.same(
        v.masterCsv().map((r) => r.uniqueid),
        readMasterCsv(name).map((r) => v.rewrite(r.uniqueid)),
        `${v.label}: Master.csv rewritten the same way`,
      );
      t.same(
        v.expected().legs.map((l) => l.uniqueid),
        v.masterCsv().map((r) => r.uniqueid),
      );
    }
    t.ok(distinct > 0);
    const [system, originate, epoch, sequence] = variants;
    t.match(system?.bytes.toString('latin1'), /SystemName: p447700900201\r\n/);
    t.match(originate?.bytes.toString('latin1'), /Uniqueid: tel-447700900204-\d+\.\d+\r\n/);
    t.match(epoch?.bytes.toString('latin1'), /Uniqueid: pbx-lab-2025550143\.\d+\r\n/);
    t.match(sequence?.bytes.toString('latin1'), /Uniqueid: pbx-lab-\d+\.07700900\d{3}\r\n/);
  },
);

t.test('fictional numbers for sequence parts stay in the drama ranges', async (t) => {
  t.equal(fictionalNumberForSeq(4), '07700900004');
  t.equal(fictionalNumberForSeq(1999), '02079460999');
  t.equal(fictionalNumberForSeq(2497), '01134960497');
  t.throws(() => fictionalNumberForSeq(3000), /beyond the fictional ranges/);
});

t.test('CEL only: greeting, login response and the CEL events, one per cel.csv row', async (t) => {
  for (const name of SMALL) {
    const parts = splitCapture(celOnly(readCapture(name)));
    t.equal(parts.greeting, splitCapture(readCapture(name)).greeting);
    const [login, ...rest] = parts.messages;
    t.match(login, /^Response: Success\r\n/, `${name}: login response first`);
    t.ok(
      rest.every((m) => eventName(m) === 'CEL'),
      `${name}: nothing but CEL`,
    );
    t.equal(rest.length, readCelCsv(name).length, `${name}: as many CEL events as cel.csv rows`);
    t.same(
      rest.map((m) => header(m, 'EventName')),
      readCelCsv(name).map((r) => r.eventType),
      `${name}: same events in the same order as cel.csv`,
    );
  }
});

t.test('Cdr with Linkedid: the mapping cdr_manager.conf [mappings] adds, matched to Master.csv', async (t) => {
  for (const name of SMALL) {
    const master = readMasterCsv(name);
    const cdrs = events(cdrWithLinkedid(readCapture(name), master), 'Cdr');
    t.equal(cdrs.length, master.length, `${name}: one Cdr event per row`);
    const byUniqueid = new Map<string, number>();
    for (const m of cdrs) {
      const lines = m.split('\r\n');
      t.match(lines.at(-1), /^Linkedid: /, 'appended after UserField');
      t.equal(lines.filter((l) => l.startsWith('Linkedid: ')).length, 1);
      const uniqueid = header(m, 'UniqueID') ?? '';
      const k = byUniqueid.get(uniqueid) ?? 0;
      byUniqueid.set(uniqueid, k + 1);
      const row = master.filter((r) => r.uniqueid === uniqueid)[k];
      // The k-th row must be the same CDR: the fields that tell rows of one channel apart agree.
      t.same(
        [
          header(m, 'Linkedid'),
          header(m, 'LastApplication'),
          header(m, 'DestinationChannel'),
          header(m, 'Disposition'),
        ],
        [row?.linkedid, row?.lastapp, row?.dstchannel, row?.disposition],
        `${name} ${uniqueid} #${k}`,
      );
    }
  }
  t.throws(
    () => cdrWithLinkedid(readCapture('basic-internal'), readMasterCsv('basic-internal').slice(1)),
    /no Master.csv row/,
  );
  t.throws(() => cdrWithLinkedid(readCapture('basic-internal'), readMasterCsv('inbound-pstn')), /no Master.csv row/);
});

t.test('no Linkedid on channel events, CEL LinkedID kept unless dropped', async (t) => {
  for (const name of SMALL) {
    const before = readCapture(name).toString('latin1');
    const after = withoutLinkedid(readCapture(name)).toString('latin1');
    t.equal(count(after, /\r\n[A-Za-z]*Linkedid: /g), 0, `${name}: no Linkedid header left`);
    t.ok(count(before, /\r\n[A-Za-z]*Linkedid: /g) > 0, `${name}: there were some`);
    t.equal(count(after, /\r\nLinkedID: /g), count(before, /\r\nLinkedID: /g), `${name}: CEL LinkedID kept`);
    t.equal(after, before.replace(/\r\n[A-Za-z]*Linkedid: [^\r]*/g, ''), `${name}: nothing else changed`);
    const bare = withoutLinkedid(readCapture(name), { dropCel: true });
    t.equal(events(bare, 'CEL').length, 0);
    t.equal(events(bare, 'Cdr').length, readMasterCsv(name).length, `${name}: Cdr events stay`);
  }
});

t.test('dropEvents removes exactly the named events', async (t) => {
  const bytes = readCapture('transfers-queue');
  const without = splitCapture(dropEvents(bytes, ['VarSet', 'Newexten']));
  const all = splitCapture(bytes).messages;
  t.equal(
    without.messages.length,
    all.length - all.filter((m) => ['VarSet', 'Newexten'].includes(eventName(m) ?? '')).length,
  );
  t.ok(without.messages.every((m) => !['VarSet', 'Newexten'].includes(eventName(m) ?? '')));
});
