// Schema problems in one phrase each: what was expected, what the file has instead (never the value).
import t from 'tap';
import { z } from 'zod';
import { validate } from '../../src/config/issues.js';

const S = z
  .object({
    port: z.number().int().min(1).max(65535),
    name: z.string().min(1),
    list: z.array(z.string()).min(1),
    mode: z.enum(['always', 'interval']),
    sink: z.discriminatedUnion('type', [
      z.object({ type: z.literal('stdout') }).strict(),
      z.object({ type: z.literal('jsonl'), path: z.string() }).strict(),
    ]),
    bits: z.number().multipleOf(8),
    on: z.boolean(),
    at: z.iso.datetime(),
    custom: z.string().regex(/^x+$/, 'one or more x'),
    nested: z.object({ username: z.string().optional() }).strict(),
  })
  .strict();

const messages = (data: unknown): Record<string, string> => {
  const r = validate(S, data);
  if (r.ok) throw new Error('expected problems');
  return Object.fromEntries(r.problems.map((p) => [p.path.join('.'), p.message]));
};

t.test('one clear phrase per problem, no doubled words', async (t) => {
  const m = messages({
    port: 'many',
    name: '',
    list: [],
    mode: 'sometimes',
    sink: { type: 'kafak' },
    bits: 12,
    on: 'yes',
    at: 'yesterday',
    custom: 'y',
    nested: { usename: 'x' },
    extra: 1,
  });
  t.same(m, {
    port: 'expected a number, not text',
    name: 'expected text that is not empty',
    list: 'expected at least one entry',
    mode: 'expected one of "always" or "interval"',
    'sink.type': 'expected one of "stdout" or "jsonl"',
    bits: 'expected a multiple of 8',
    on: 'expected true or false, not text',
    at: 'expected an ISO-8601 time such as 2026-11-01T00:00:00Z',
    custom: 'expected one or more x',
    'nested.usename': 'unknown key: did you mean "username"?',
    extra: 'unknown key (this place takes port, name, list, mode, sink, bits, on, at, custom, nested)',
  });
  for (const text of Object.values(m)) t.notMatch(text, /expected .*expected|Invalid input/i, text);
});

t.test('ranges, fractions and missing settings', async (t) => {
  const m = messages({
    port: 1.5,
    list: ['a'],
    mode: 'always',
    sink: { type: 'stdout' },
    bits: 8,
    on: true,
    at: '2026-01-01T00:00:00Z',
    custom: 'x',
    nested: {},
  });
  t.equal(m.port, 'expected a whole number, not a number with a fraction');
  t.equal(m.name, 'expected text (required)');
  t.equal(messages({ port: 0 }).port, 'expected a number of at least 1');
  t.equal(messages({ port: 70000 }).port, 'expected a number of at most 65535');
  t.equal(messages({}).mode, 'expected one of "always" or "interval" (required)');
});

t.test('the value itself is never repeated (it may be a secret)', async (t) => {
  const text = Object.values(messages({ port: 's3cr3t-value', name: 's3cr3t-value', on: 's3cr3t-value' })).join('\n');
  t.notMatch(text, 's3cr3t');
});
