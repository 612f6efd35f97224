import t from 'tap';
import { classifyNumber, createNumberClassifier, type NumberPolicy } from '../../src/privacy/numbers.js';

const GB: NumberPolicy = { defaultRegion: 'GB', fallbackRegions: [], extensionMaxDigits: 6 };
const GB_US: NumberPolicy = { ...GB, fallbackRegions: ['US'] };

t.test('one subscriber in every format normalises to one E.164 value', async (t) => {
  for (const raw of [
    '+447700900123',
    '07700900123',
    '00447700900123',
    '447700900123',
    '+44 7700 900123',
    '07700 900 123',
    ' +44 (0)7700 900123 ',
  ]) {
    const n = classifyNumber(raw, GB);
    t.equal(n.kind, 'e164', `${raw} is a number`);
    t.equal(n.canonical, '+447700900123', `${raw} normalises`);
  }
  for (const raw of ['+1 (202) 555-0146', '+12025550146', '0012025550146', '12025550146']) {
    t.equal(classifyNumber(raw, GB).canonical, '+12025550146', raw);
  }
});

t.test('valid numbers carry country and type; drama-range numbers are possible but not valid', async (t) => {
  const london = classifyNumber('02079460555', GB);
  t.same([london.kind, london.country, london.callingCode, london.numberType], ['e164', 'GB', '44', 'FIXED_LINE']);
  const drama = classifyNumber('07700900123', GB);
  t.same([drama.kind, drama.country, drama.callingCode, drama.numberType], ['e164', null, '44', null]);
});

t.test('fallback regions catch national numbers of another country', async (t) => {
  t.equal(classifyNumber('2025550144', GB_US).canonical, '+12025550144');
  t.equal(classifyNumber('2025550144', GB_US).country, 'US');
  // Without the fallback the default region decides (documented behaviour).
  t.equal(classifyNumber('2025550144', GB).canonical, '+442025550144');
});

t.test('withheld, control extensions, extensions and invalid values', async (t) => {
  const table: Array<[string, string, string]> = [
    ['', 'withheld', ''],
    ['anonymous', 'withheld', ''],
    ['Restricted', 'withheld', ''],
    ['unknown', 'withheld', ''],
    ['<unknown>', 'withheld', ''],
    ['s', 'none', ''],
    ['h', 'none', ''],
    ['1001', 'extension', '1001'],
    ['8100', 'extension', '8100'],
    ['*97', 'extension', '*97'],
    ['+1202555006', 'invalid', '+1202555006'],
    ['907700900208x', 'invalid', '907700900208'],
    ['alice', 'invalid', 'str:alice'],
  ];
  for (const [raw, kind, canonical] of table) {
    const n = classifyNumber(raw, GB);
    t.equal(n.kind, kind, `${JSON.stringify(raw)} kind`);
    t.equal(n.canonical, canonical, `${JSON.stringify(raw)} canonical`);
  }
  t.equal(
    classifyNumber('1234567', { ...GB, extensionMaxDigits: 7 }).kind,
    'extension',
    'extension length is a policy',
  );
});

t.test('the cached classifier returns the same answers', async (t) => {
  const c = createNumberClassifier(GB, 2);
  for (const raw of ['07700900123', '+447700900123', '1001', '07700900123']) t.same(c(raw), classifyNumber(raw, GB));
});
