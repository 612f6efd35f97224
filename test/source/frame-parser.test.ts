import { createHash } from 'node:crypto';
import t from 'tap';
import { mulberry32 } from '../../src/source/replay-server.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import { readCapture } from '../../src/source/capture.js';
import { createFrameParser, type FrameErrorKind } from '../../src/source/frame-parser.js';

const FIXTURES = new URL('../fixtures/ami/', import.meta.url);

interface Parsed {
  messages: AmiMessage[];
  errors: Array<[FrameErrorKind, number]>;
}

function parse(chunks: Iterable<Buffer>, opts: { maxFrameBytes?: number; compileShapes?: boolean } = {}): Parsed {
  const out: Parsed = { messages: [], errors: [] };
  const parser = createFrameParser({
    ...opts,
    onMessage: (m) => out.messages.push(m),
    onError: (k, b) => out.errors.push([k, b]),
  });
  for (const c of chunks) parser.push(c);
  parser.end();
  return out;
}

const whole = (s: string | Buffer): Buffer[] => [Buffer.isBuffer(s) ? s : Buffer.from(s)];
const bytewise = (s: string | Buffer): Buffer[] =>
  [...(Buffer.isBuffer(s) ? s : Buffer.from(s))].map((b) => Buffer.from([b]));

/** Cuts at random offsets: mostly small pieces, some large, a few single bytes. */
function* randomChunks(buf: Buffer, seed: number, maxChunk = 4096): Generator<Buffer> {
  const rnd = mulberry32(seed);
  let pos = 0;
  while (pos < buf.length) {
    const r = rnd();
    const size = r < 0.1 ? 1 : Math.max(1, Math.floor(Math.exp(rnd() * Math.log(maxChunk))));
    yield buf.subarray(pos, pos + size);
    pos += size;
  }
}

const digest = (msgs: readonly AmiMessage[]): string => {
  const h = createHash('sha256');
  for (const m of msgs) h.update(JSON.stringify(m)).update('\n');
  return h.digest('hex');
};

t.test('framing and fields', async (t) => {
  const cases: Array<{ name: string; input: string; messages: object[]; errors?: Array<[FrameErrorKind, number]> }> = [
    {
      name: 'one message, CRLF',
      input: 'Event: Hangup\r\nChannel: SIP/1001-0000000b\r\n\r\n',
      messages: [{ event: 'Hangup', channel: 'SIP/1001-0000000b' }],
    },
    { name: 'bare LF', input: 'Event: A\nX: 1\n\nEvent: B\n\n', messages: [{ event: 'A', x: '1' }, { event: 'B' }] },
    {
      name: 'mixed line endings',
      input: 'Event: A\r\nX: 1\n\r\nEvent: B\n\r\n',
      messages: [{ event: 'A', x: '1' }, { event: 'B' }],
    },
    {
      name: 'greeting skipped at the start',
      input: 'Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nMessage: Authentication accepted\r\n\r\n',
      messages: [{ response: 'Success', message: 'Authentication accepted' }],
    },
    { name: 'greeting alone', input: 'Asterisk Call Manager/9.0.0\r\n', messages: [] },
    {
      name: 'greeting text later is a malformed line',
      input: 'Event: A\r\n\r\nAsterisk Call Manager/9.0.0\r\nEvent: B\r\n\r\n',
      messages: [{ event: 'A' }, { event: 'B' }],
      errors: [['malformed', 27]],
    },
    {
      name: 'keys lower-cased and trimmed, value kept verbatim',
      input: ' UniqueID : x\r\nMessage: a: b \r\n\r\n',
      messages: [{ uniqueid: 'x', message: 'a: b ' }],
    },
    {
      name: 'split at the first ": "',
      input: 'Key:Part: v\r\nEmpty: \r\nBare:\r\nNoSpace:v\r\n\r\n',
      messages: [{ 'key:part': 'v', empty: '', bare: '', nospace: 'v' }],
    },
    {
      name: 'repeated keys in order',
      input: 'Response: Success\r\nOutput: one\r\nOutput: two\r\nOutput: three\r\nVariable: A=1\r\n\r\n',
      messages: [{ response: 'Success', output: ['one', 'two', 'three'], variable: 'A=1' }],
    },
    {
      name: 'repeated keys differing in case',
      input: 'Event: X\r\nUniqueid: a\r\nUniqueID: b\r\n\r\n',
      messages: [{ event: 'X', uniqueid: ['a', 'b'] }],
    },
    {
      name: 'malformed line skipped, rest kept',
      input: 'Event: A\r\ngarbage line\r\nX: 1\r\n: no key\r\n\r\n',
      messages: [{ event: 'A', x: '1' }],
      errors: [
        ['malformed', 12],
        ['malformed', 8],
      ],
    },
    {
      name: 'frame of only malformed lines',
      input: 'nothing here\r\n\r\nEvent: B\r\n\r\n',
      messages: [{ event: 'B' }],
      errors: [['malformed', 12]],
    },
    {
      name: 'extra blank lines make no messages',
      input: '\r\n\r\nEvent: A\r\n\r\n\r\n\n\r\nEvent: B\r\n\r\n\r\n',
      messages: [{ event: 'A' }, { event: 'B' }],
    },
    {
      name: 'unterminated frame at end',
      input: 'Event: A\r\n\r\nEvent: B\r\nX: 1\r\n',
      messages: [{ event: 'A' }],
      errors: [['malformed', 16]],
    },
    {
      name: 'a lone CR line is not blank',
      input: 'Event: A\r\n\r\r\nX: 1\r\n\r\n',
      messages: [{ event: 'A', x: '1' }],
      errors: [['malformed', 1]],
    },
  ];
  for (const c of cases) {
    for (const [how, chunks] of [
      ['whole', whole(c.input)],
      ['byte by byte', bytewise(c.input)],
    ] as const) {
      const got = parse(chunks);
      t.same(got.messages, c.messages, `${c.name} (${how})`);
      t.same(got.errors, c.errors ?? [], `${c.name}: errors (${how})`);
    }
  }
});

t.test('prototype keys stay own data', async (t) => {
  const { messages } = parse(
    whole(
      'Event: X\r\n__proto__: a\r\nConstructor: b\r\ntoString: c\r\n__proto__: d\r\n\r\nEvent: Y\r\n__proto__: e\r\n\r\n',
    ),
  );
  const [x, y] = messages as [AmiMessage, AmiMessage];
  t.equal(Object.getPrototypeOf(x), Object.prototype);
  t.same(Object.getOwnPropertyDescriptor(x, '__proto__')?.value, ['a', 'd']);
  t.equal(x['constructor'], 'b');
  t.equal(x['tostring'], 'c');
  t.equal(Object.getOwnPropertyDescriptor(y, '__proto__')?.value, 'e');
  t.equal(({} as Record<string, unknown>)['event'], undefined, 'Object.prototype untouched');
});

t.test('oversized frames are dropped, counted, and the stream goes on', async (t) => {
  const big = `Event: Big\r\n${'Output: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n'.repeat(40)}`;
  const input = `Event: A\r\n\r\n${big}\r\nEvent: B\r\n\r\n`;
  const bigBytes = Buffer.byteLength(big) + 1; // up to the blank line's '\r'
  for (const [how, chunks] of [
    ['whole', whole(input)],
    ['byte by byte', bytewise(input)],
    ['random', [...randomChunks(Buffer.from(input), 7, 300)]],
  ] as const) {
    const got = parse(chunks, { maxFrameBytes: 1024 });
    t.same(got.messages, [{ event: 'A' }, { event: 'B' }], how);
    t.same(got.errors, [['oversized', bigBytes]], `${how}: one report with the frame's size`);
  }
  const endless = parse(
    [Buffer.from('Event: A\r\n\r\n'), ...Array.from({ length: 50 }, () => Buffer.alloc(1000, 0x41))],
    { maxFrameBytes: 1024 },
  );
  t.same(endless.messages, [{ event: 'A' }]);
  t.same(endless.errors, [['oversized', 50_000]], 'an endless frame is reported at end()');
  const exact = 'Event: A\r\nX: 12345\r\n\r'; // 21 bytes up to the blank line's '\r'
  t.same(
    parse(whole(`${exact}\n`), { maxFrameBytes: 21 }).messages,
    [{ event: 'A', x: '12345' }],
    'a frame of exactly maxFrameBytes is kept',
  );
  t.same(parse(bytewise(`${exact}\n`), { maxFrameBytes: 20 }).errors, [['oversized', 21]], 'one byte more is not');
});

t.test('bytes that are not UTF-8 do not throw', async (t) => {
  const input = Buffer.concat([
    Buffer.from('Event: A\r\nName: '),
    Buffer.from([0xff, 0xfe, 0xc3]),
    Buffer.from('\r\nCaller: Zo\u00eb\r\n\r\n'),
  ]);
  for (const chunks of [whole(input), bytewise(input)]) {
    const { messages, errors } = parse(chunks);
    t.same(messages, [{ event: 'A', name: '\ufffd\ufffd\ufffd', caller: 'Zo\u00eb' }]);
    t.same(errors, []);
  }
  t.doesNotThrow(() => parse(whole(Buffer.from([0x80, 0x0d, 0x0a, 0x0d, 0x0a, 0xc0, 0x3a, 0x20, 0xff, 0x0a, 0x0a]))));
});

t.test('the generic builder gives the same messages', async (t) => {
  const input =
    'Event: A\r\nX: 1\r\n\r\nResponse: Success\r\nOutput: a\r\nOutput: b\r\n\r\nEvent: A\r\nX: 2\r\nY: 3\r\n\r\n';
  t.same(parse(whole(input), { compileShapes: false }).messages, parse(whole(input)).messages);
});

t.test('long frames and long keys take the generic path with the same result', async (t) => {
  const lines = Array.from({ length: 150 }, (_, i) => `Field${i}: v${i}\r\n`).join('');
  const longKey = `${'K'.repeat(100)}: x\r\n`;
  const input = `Event: Long\r\n${lines}\r\nEvent: Odd\r\n${longKey}\r\nEvent: Long\r\n${lines}\r\n`;
  const { messages } = parse(whole(input));
  t.equal(messages.length, 3);
  t.equal(Object.keys(messages[0]!).length, 151);
  t.equal(messages[0]!['field149'], 'v149');
  t.equal(messages[1]![`${'k'.repeat(100)}`], 'x');
  t.same(messages[2], messages[0]);
  t.same(messages, parse(whole(input), { compileShapes: false }).messages);
});

t.test('more distinct shapes than the table holds', async (t) => {
  const input = Array.from({ length: 3000 }, (_, i) => `Event: E${i}\r\nKey${i}: v${i}\r\nZ: z\r\n\r\n`).join('');
  const { messages } = parse(whole(input));
  t.equal(messages.length, 3000);
  t.same(messages[2999], { event: 'E2999', key2999: 'v2999', z: 'z' });
  t.same(messages[10], { event: 'E10', key10: 'v10', z: 'z' });
});

// Figures from the fixture README, checked here against the bytes.
const CAPTURE_FIGURES = [
  { name: 'basic-internal', messages: 1673, responses: { Success: 1, Goodbye: 1 } },
  { name: 'inbound-pstn', messages: 4619, responses: { Success: 1, Goodbye: 1 } },
  { name: 'outbound-pstn', messages: 2109, responses: { Success: 1, Goodbye: 1 } },
  { name: 'recording-consent', messages: 2499, responses: { Success: 4, Goodbye: 1 } },
  { name: 'edge-actions', messages: 1152, responses: { Success: 21, Error: 3, Goodbye: 1 } },
  { name: 'transfers-queue', messages: 939, responses: { Success: 4, Goodbye: 1 } },
  { name: 'load', messages: 120481, responses: { Success: 1, Goodbye: 1 } },
] as const;

function countBlankLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf('\r\n\r\n'); i !== -1; i = buf.indexOf('\r\n\r\n', i + 4)) n++;
  return n;
}

for (const fig of CAPTURE_FIGURES) {
  t.test(`real capture ${fig.name}: any chunking gives the same messages`, async (t) => {
    const buf = await readCapture(new URL(`${fig.name}.ami.gz`, FIXTURES).pathname);
    const ref = parse(whole(buf));
    t.same(ref.errors, [], 'no malformed or oversized frames');
    t.equal(ref.messages.length, fig.messages, 'message count as in the README');
    t.equal(ref.messages.length, countBlankLines(buf), 'one message per blank line');
    const responses: Record<string, number> = {};
    for (const m of ref.messages)
      if (typeof m['response'] === 'string') responses[m['response']] = (responses[m['response']] ?? 0) + 1;
    t.same(responses, fig.responses, 'responses as in the README');
    t.equal(
      ref.messages.filter((m) => typeof m['event'] === 'string').length,
      fig.messages - Object.values(responses).reduce((a, b) => a + b, 0),
      'everything else is an event',
    );
    t.notOk(
      ref.messages.some((m) => Object.keys(m).some((k) => k !== k.toLowerCase())),
      'keys lower-cased',
    );

    const refDigest = digest(ref.messages);
    const seeds = fig.name === 'load' ? [1] : [1, 2, 3];
    for (const seed of seeds) {
      const rechunked = parse(randomChunks(buf, seed, fig.name === 'load' ? 65536 : 4096));
      t.equal(rechunked.messages.length, fig.messages, `seed ${seed}: count`);
      t.equal(digest(rechunked.messages), refDigest, `seed ${seed}: identical messages`);
    }
    if (fig.name !== 'load') {
      t.equal(
        digest(parse(whole(buf), { compileShapes: false }).messages),
        refDigest,
        'generic builder: identical messages',
      );
    }
  });
}

t.test('edge-actions: Command output lines become one array', async (t) => {
  const buf = await readCapture(new URL('edge-actions.ami.gz', FIXTURES).pathname);
  const { messages } = parse(whole(buf));
  const withOutput = messages.filter((m) => m['output'] !== undefined);
  t.ok(withOutput.length >= 7, 'every Command response has Output');
  const multi = withOutput.filter((m) => Array.isArray(m['output']));
  t.ok(multi.length > 0, 'multi-line outputs are arrays');
  t.ok(
    multi.every((m) => (m['output'] as readonly string[]).every((l) => typeof l === 'string')),
    'of strings',
  );
  const unknownCli = messages.find((m) => m['response'] === 'Error' && m['actionid'] === 'cmd-4');
  t.equal(unknownCli?.['message'], 'Command output follows', 'an unknown CLI command: Error with output');
});
