// The guard alone: a raw number is found in every format it can take in
// text; what policy lets out (kept extensions, fpe parts, durations, keyed
// tokens and ids) is not a hit; names are found by their words.
import t from 'tap';
import { createGuard, pathOf } from '../../src/egress/guard.js';
import { MIN_GUARDED_DIGITS, numberForms, RawValues, RecentRawValues } from '../../src/egress/raw-values.js';

const guard = createGuard();
function callOf(numbers: string[], names: string[] = []): RawValues {
  const v = new RawValues();
  for (const n of numbers) v.addNumber(n);
  for (const n of names) v.addName(n);
  return v;
}

t.test('a raw number is found in every format', async (t) => {
  const own = callOf(['+447700900123']);
  for (const text of [
    '{"caller":"+447700900123"}',
    'dialled 07700900123',
    'dialled 07700 900123',
    'intl 00447700900123',
    'spaced +44 7700 900 123',
    'dotted 44.7700.900.123',
    'bracketed +44 (0) 7700-900123',
    'in a channel SIP/447700900123-0000001a',
    'in an id p447700900123-1795418472.1',
    'national 7700900123',
    // Fullwidth and Arabic-Indic digits are folded before the search.
    'fullwidth \uff10\uff17\uff17\uff10\uff10\uff19\uff10\uff10\uff11\uff12\uff13',
    'arabic \u0660\u0667\u0667\u0660\u0660\u0669\u0660\u0660\u0661\u0662\u0663',
  ])
    t.same(guard.check(text, { own }), { kind: 'number' }, text);
});

t.test('what policy lets out is not a hit', async (t) => {
  const own = callOf(['1001', '+447700900123', '1795418472.36']);
  for (const text of [
    // A kept extension beside a duration of the same digits.
    '{"caller":{"kind":"extension","number":"1001"},"billSec":1001,"durationSec":1001}',
    // fpe keeps at most 6 digits in clear; the rest is another number.
    '{"callee":{"fpe":"+447700_431977"}}',
    // Keyed tokens and ids are letters.
    '{"id":"kpafgbnmcoeldhij","token":"taKA-88uQ_x"}',
    // Times and counts.
    '{"startedAt":"2026-12-02T13:26:16.123Z","events":123456}',
  ])
    t.equal(guard.check(text, { own }), undefined, text);
  t.equal(MIN_GUARDED_DIGITS, 7, 'the minimum the README states');
  t.same(numberForms('1001'), [], 'an extension has no guarded form');
});

t.test('a raw Asterisk id is found, whatever it carries', async (t) => {
  const own = callOf(['tel-2025550143-1795418472.9', '195176c06ab8-1795418472.12']);
  t.ok(guard.check('key tel-2025550143-1795418472.9', { own }), 'the whole id');
  t.ok(guard.check('a US number 2025550143 on its own', { own }), 'the number inside it');
  t.ok(guard.check('epoch.seq 1795418472.12', { own }), 'the epoch and sequence of a Docker-host id');
});

t.test('names: by their words, short and placeholder names let out', async (t) => {
  const own = callOf([], ['Alice Liddell', 'Bob', 'anonymous']);
  t.same(guard.check('{"note":"from ALICE  liddell"}', { own }), { kind: 'name' });
  t.equal(guard.check('{"note":"Bob called"}', { own }), undefined, 'names under 4 characters are not searched');
  t.equal(guard.check('{"kind":"anonymous"}', { own }), undefined, 'a placeholder is not a name');
});

t.test('recent calls are searched for outputs of no one call, and forgotten when old', async (t) => {
  const recent = new RecentRawValues(4);
  const call = new RawValues(recent);
  call.addNumber('+12025550143');
  t.ok(guard.check('log line 2025550143', { recent }), 'a recent call');
  for (const n of ['+12025550101', '+12025550102', '+12025550103', '+12025550104', '+12025550105'])
    new RawValues(recent).addNumber(n);
  t.equal(guard.check('log line 2025550143', { recent }), undefined, 'forgotten past the bound');
});

t.test('pathOf names the field, never the value', async (t) => {
  const hit = (s: string) => s.includes('7700900123');
  t.equal(pathOf({ a: 1, callee: { token: 'x', number: '+447700900123' } }, hit), 'callee.number');
  t.equal(
    pathOf({ '+447700900123': 'k' }, (s) => s === 'k'),
    '?',
    'a key that is not a field name is not shown',
  );
  t.equal(pathOf({ a: ['x', '7700900123'] }, hit), 'a.1');
  t.equal(pathOf({ a: 'x' }, hit), undefined);
});

t.test("a channel's sequence number is not a party", async (t) => {
  const own = callOf(['SIP/1001-0000001a', 'PJSIP/trunk-00000002']);
  t.notOk(
    [...own.digits].some((d) => d.startsWith('000')),
    'no zero-padded sequence is guarded on its own',
  );
  t.equal(guard.check('{"count":10000001}', { own }), undefined);
});

t.test('dates are not numbers: a recording file name does not make every record a hit', async (t) => {
  const own = callOf([
    '/var/spool/asterisk/monitor/20261123-072154-1004-1004-pbx-lab-1795418514.153.wav',
    '2026-11-23 07:21:13',
  ]);
  t.equal(guard.check('{"startedAt":"2026-11-23T07:21:54.000Z"}', { own }), undefined);
  t.ok(guard.check('{"x":"1795418514.153"}', { own }), 'the id inside the file name is still guarded');
});
