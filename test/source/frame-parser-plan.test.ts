// The planned parser against the whole decode: for any input and any
// chunking, the same messages (planned events restricted to the plan's
// headers, everything else identical) and the same errors.
import { createHash } from 'node:crypto';
import t from 'tap';
import { field, type AmiMessage } from '../../src/source/ami-message.js';
import { readCapture } from '../../src/source/capture.js';
import { GATEWAY_DECODE_PLAN, decodePlan, decodesHeader, type DecodePlan } from '../../src/source/decode-plan.js';
import { createFrameParser, type FrameErrorKind } from '../../src/source/frame-parser.js';
import { mulberry32 } from '../../src/source/replay-server.js';

const FIXTURES = new URL('../fixtures/ami/', import.meta.url);
const CAPTURES = [
  'basic-internal',
  'inbound-pstn',
  'outbound-pstn',
  'recording-consent',
  'edge-actions',
  'transfers-queue',
  'load',
];

interface Parsed {
  messages: AmiMessage[];
  errors: Array<[FrameErrorKind, number]>;
}

function parse(chunks: Iterable<Buffer>, opts: { decodePlan?: DecodePlan; maxFrameBytes?: number } = {}): Parsed {
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

/** What the plan promises, from the whole decode: an event it reads in part keeps only the plan's headers, in order. */
function restricted(msg: AmiMessage, plan: DecodePlan): AmiMessage {
  const event = field(msg, 'event');
  if (event === '' || plan.full.has(event) || Object.keys(msg).some((k) => plan.fullIfHeader.has(k))) return msg;
  return Object.fromEntries(Object.entries(msg).filter(([k]) => decodesHeader(plan, event, k)));
}

const whole = (s: string | Buffer): Buffer[] => [Buffer.isBuffer(s) ? s : Buffer.from(s)];
const bytewise = (s: string | Buffer): Buffer[] =>
  [...(Buffer.isBuffer(s) ? s : Buffer.from(s))].map((b) => Buffer.from([b]));

/** Cuts at random offsets: mostly small pieces, some large, a few single bytes. */
function* randomChunks(buf: Buffer, seed: number, maxChunk = 4096): Generator<Buffer> {
  const rnd = mulberry32(seed);
  let pos = 0;
  while (pos < buf.length) {
    const size = rnd() < 0.1 ? 1 : Math.max(1, Math.floor(Math.exp(rnd() * Math.log(maxChunk))));
    yield buf.subarray(pos, pos + size);
    pos += size;
  }
}

/** Key order counts too: a digest of the JSON. */
const digest = (msgs: readonly AmiMessage[]): string => {
  const h = createHash('sha256');
  for (const m of msgs) h.update(JSON.stringify(m)).update('\n');
  return h.digest('hex');
};

for (const name of CAPTURES) {
  t.test(`real capture ${name}: the planned parser gives the whole decode, restricted to the plan`, async (t) => {
    const buf = await readCapture(new URL(`${name}.ami.gz`, FIXTURES).pathname);
    const ref = parse(whole(buf));
    const expected = ref.messages.map((m) => restricted(m, GATEWAY_DECODE_PLAN));
    const want = digest(expected);
    const kept = expected.filter((m, i) => m === ref.messages[i]).length;
    t.ok(kept > 0 && kept < expected.length, `${kept} of ${expected.length} messages whole, the rest restricted`);
    const chunkings: Array<[string, Iterable<Buffer>]> = [
      ['whole', whole(buf)],
      ['64 KiB reads', randomChunks(buf, 1, 65536)],
    ];
    if (name !== 'load')
      chunkings.push(['small random reads', randomChunks(buf, 2, 512)], ['seed 3', randomChunks(buf, 3)]);
    for (const [how, chunks] of chunkings) {
      const got = parse(chunks, { decodePlan: GATEWAY_DECODE_PLAN });
      t.equal(got.messages.length, expected.length, `${how}: count`);
      t.equal(digest(got.messages), want, `${how}: identical messages`);
      t.same(got.errors, ref.errors, `${how}: identical errors`);
    }
    if (name === 'edge-actions') {
      const got = parse(whole(buf), { decodePlan: GATEWAY_DECODE_PLAN }).messages;
      const items = got.filter((m) => m['actionid'] !== undefined && m['event'] !== undefined);
      t.ok(items.length > 0, `${items.length} list items and other events with an ActionID`);
      t.ok(
        items.every((m) => ref.messages.some((r) => JSON.stringify(r) === JSON.stringify(m))),
        'arrive whole',
      );
      const responses = got.filter((m) => m['event'] === undefined);
      t.ok(responses.length >= 24, 'responses');
      t.ok(
        responses.every((m) => ref.messages.some((r) => JSON.stringify(r) === JSON.stringify(m))),
        'arrive whole',
      );
    }
  });
}

t.test('odd frames: the same as the whole decode, in every chunking', async (t) => {
  const plan = GATEWAY_DECODE_PLAN;
  const cases: Array<{ name: string; input: string | Buffer; messages?: object[] }> = [
    {
      name: 'only the plan’s headers of a VarSet',
      input:
        'Event: VarSet\r\nChannel: SIP/1-1\r\nCallerIDNum: 1001\r\nUniqueid: a.1\r\nVariable: X\r\nValue: y\r\n\r\n',
      messages: [{ event: 'VarSet', channel: 'SIP/1-1', uniqueid: 'a.1', variable: 'X', value: 'y' }],
    },
    {
      name: 'header case as it comes',
      input: 'Event: Newexten\r\nUNIQUEID: a\r\nLinkedID: b\r\nchannel: c\r\nAccountcode: d\r\nExten: 5\r\n\r\n',
      messages: [{ event: 'Newexten', uniqueid: 'a', linkedid: 'b', channel: 'c', accountcode: 'd' }],
    },
    {
      name: 'white space around a wanted key: trimmed, as the whole decode does',
      input: 'Event: Newexten\r\n Uniqueid: a\r\nLinkedid : b\r\nChannel\t: c\r\n\r\n',
      messages: [{ event: 'Newexten', uniqueid: 'a', linkedid: 'b', channel: 'c' }],
    },
    {
      name: 'no space after the colon, a colon in the key',
      input: 'Event: Newexten\r\nUniqueid:a\r\nLinkedid:x: y\r\nChannel:: z\r\n\r\n',
      messages: [{ event: 'Newexten', uniqueid: 'a' }],
    },
    {
      name: 'the Kelvin sign lower-cases to k',
      input: 'Event: Newexten\r\nLin\u212Aedid: b\r\nUniqueid: a\r\n\r\n',
      messages: [{ event: 'Newexten', linkedid: 'b', uniqueid: 'a' }],
    },
    {
      name: 'malformed lines among the unread headers are reported',
      input: 'Event: Newexten\r\nthis line has no colon 07700900123\r\nUniqueid: a\r\n: no key\r\nAppData: x\r\n\r\n',
      messages: [{ event: 'Newexten', uniqueid: 'a' }],
    },
    {
      name: 'an empty key where the frame before had its colon',
      input: 'Event: Newexten\r\nAB:x\r\n\r\nEvent: Newexten\r\n: :\r\nUniqueid: a\r\n\r\n',
      messages: [{ event: 'Newexten' }, { event: 'Newexten', uniqueid: 'a' }],
    },
    {
      name: 'repeated wanted headers become arrays',
      input: 'Event: VarSet\r\nValue: 1\r\nVariable: V\r\nValue: 2\r\nEvent: Again\r\nValue: 3\r\n\r\n',
      messages: [{ event: ['VarSet', 'Again'], value: ['1', '2', '3'], variable: 'V' }],
    },
    {
      name: 'an event with an ActionID (a list item) arrives whole',
      input:
        'Event: Newexten\r\nActionID: a1\r\nUniqueid: a\r\nAppData: x\r\n\r\nEvent: Newexten\r\nUniqueid: b\r\nAppData: y\r\n\r\n',
      messages: [
        { event: 'Newexten', actionid: 'a1', uniqueid: 'a', appdata: 'x' },
        { event: 'Newexten', uniqueid: 'b' },
      ],
    },
    {
      name: 'Cdr, responses and an empty event name arrive whole',
      input:
        'Event: Cdr\r\nSource: 1001\r\nUniqueID: a\r\n\r\nResponse: Success\r\nActionID: 1\r\nEventList: start\r\n\r\nEvent: \r\nX: 1\r\n\r\n',
      messages: [
        { event: 'Cdr', source: '1001', uniqueid: 'a' },
        { response: 'Success', actionid: '1', eventlist: 'start' },
        { event: '', x: '1' },
      ],
    },
    {
      name: 'an event the plan does not name: the common headers',
      input: 'Event: BridgeLeave\r\nBridgeUniqueid: br\r\nUniqueid: a\r\nChannel: c\r\n\r\n',
      messages: [{ event: 'BridgeLeave', uniqueid: 'a', channel: 'c' }],
    },
    {
      name: 'bare LF, mixed line ends, a lone CR line, extra blank lines',
      input:
        'Event: Newexten\nUniqueid: a\nAppData: x\n\nEvent: Newexten\r\nUniqueid: b\n\r\n\r\n\nEvent: Newexten\r\n\rUniqueid: c\r\n\r\n',
    },
    {
      name: 'empty values, values with colons, a header before the event name',
      input:
        'Event: Newexten\r\nUniqueid: \r\nChannel: a: b:c\r\n\r\nUniqueid: a\r\nEvent: Newexten\r\nAppData: x\r\n\r\n',
      messages: [
        { event: 'Newexten', uniqueid: '', channel: 'a: b:c' },
        { uniqueid: 'a', event: 'Newexten' },
      ],
    },
    {
      name: 'control characters and DEL in keys, a key of one letter',
      input: 'Event: Newexten\r\nU\x7fniqueid: a\r\nUniqueid\x01: b\r\nu: c\r\n\x01Channel: d\r\nChannel: e\r\n\r\n',
    },
    {
      name: 'not UTF-8, and UTF-8 values',
      input: Buffer.concat([
        Buffer.from('Event: VarSet\r\nVariable: N\r\nValue: '),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('\r\nChannel: Zo\u00eb\r\n\r\nEvent: VarSet\r\nValue: plain\r\n\r\n'),
      ]),
    },
    {
      name: 'unterminated at the end',
      input: 'Event: Newexten\r\nUniqueid: a\r\n\r\nEvent: Newexten\r\nUniqueid: b\r\n',
    },
  ];
  // The first frame of a stream may carry the greeting, so the whole decode takes it: a frame before each case.
  const first = Buffer.from('Event: First\r\n\r\n');
  for (const c of cases) {
    const input = Buffer.concat([first, Buffer.isBuffer(c.input) ? c.input : Buffer.from(c.input)]);
    const ref = parse(whole(input));
    const expected = ref.messages.map((m) => restricted(m, plan));
    if (c.messages !== undefined) t.same(expected.slice(1), c.messages, `${c.name}: as expected`);
    for (const [how, chunks] of [
      ['whole', whole(input)],
      ['byte by byte', bytewise(input)],
      ['random', [...randomChunks(input, 5, 16)]],
    ] as const) {
      const got = parse(chunks, { decodePlan: plan });
      t.equal(digest(got.messages), digest(expected), `${c.name} (${how})`);
      t.same(got.errors, ref.errors, `${c.name}: errors (${how})`);
    }
  }
});

t.test('the first frame, after the greeting, is restricted too', async (t) => {
  const input = 'Asterisk Call Manager/9.0.0\r\nEvent: Newexten\r\nUniqueid: a\r\nAppData: x\r\n\r\n';
  for (const chunks of [whole(input), bytewise(input)])
    t.same(parse(chunks, { decodePlan: GATEWAY_DECODE_PLAN }).messages, [{ event: 'Newexten', uniqueid: 'a' }]);
});

t.test('frames over the cap are dropped and counted alike, in one read or across reads', async (t) => {
  const big = `Event: VarSet\r\nVariable: V\r\n${'Value: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n'.repeat(40)}`;
  const input = Buffer.from(`Event: Newexten\r\nUniqueid: a\r\n\r\n${big}\r\nEvent: Newexten\r\nUniqueid: b\r\n\r\n`);
  const ref = parse(whole(input), { maxFrameBytes: 1024 });
  t.same(ref.errors, [['oversized', Buffer.byteLength(big) + 1]]);
  for (const chunks of [whole(input), bytewise(input), [...randomChunks(input, 9, 700)]]) {
    const got = parse(chunks, { decodePlan: GATEWAY_DECODE_PLAN, maxFrameBytes: 1024 });
    t.same(got.messages, [
      { event: 'Newexten', uniqueid: 'a' },
      { event: 'Newexten', uniqueid: 'b' },
    ]);
    t.same(got.errors, ref.errors);
  }
});

t.test('plans of any shape: keys sharing first letters and lengths, digits and dashes', async (t) => {
  const plan = decodePlan({
    fields: ['a', 'ab', 'abc', 'b-2', 'b_2', 'cid-callingpres', 'x9'],
    byEvent: { E: ['abd', 'a-c'] },
    fullIfHeader: ['zz'],
  });
  const input =
    'Event: First\r\n\r\n' +
    'Event: E\r\nA: 1\r\nAB: 2\r\nAbC: 3\r\nABD: 4\r\nA-C: 5\r\nB-2: 6\r\nB\r2: 7\r\nB_2: 8\r\nCID-CallingPres: 9\r\nX9: 10\r\nX\x19: 11\r\nAbCd: 12\r\n\r\n' +
    'Event: F\r\nABD: 1\r\nab: 2\r\n\r\nEvent: F\r\nZZ: 1\r\nab: 2\r\n\r\n';
  const ref = parse(whole(input)).messages.map((m) => restricted(m, plan));
  t.same(ref.slice(1), [
    {
      event: 'E',
      a: '1',
      ab: '2',
      abc: '3',
      abd: '4',
      'a-c': '5',
      'b-2': '6',
      b_2: '8',
      'cid-callingpres': '9',
      x9: '10',
    },
    { event: 'F', ab: '2' },
    { event: 'F', zz: '1', ab: '2' },
  ]);
  for (const chunks of [whole(input), bytewise(input)])
    t.equal(digest(parse(chunks, { decodePlan: plan }).messages), digest(ref));
});

t.test('fuzz: random and mutated real frames, randomly chunked, match the whole decode', async (t) => {
  const rand = mulberry32(20261123);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const real: Buffer[] = [];
  for (const name of ['inbound-pstn', 'recording-consent', 'edge-actions', 'transfers-queue']) {
    const text = (await readCapture(new URL(`${name}.ami.gz`, FIXTURES).pathname)).toString('latin1');
    for (const m of text.slice(text.indexOf('\r\n') + 2).split('\r\n\r\n'))
      if (m.length > 0) real.push(Buffer.from(`${m}\r\n\r\n`, 'latin1'));
  }
  const keys = [
    'Uniqueid',
    'UNIQUEID',
    ' Linkedid',
    'Channel ',
    'Event',
    'ActionID',
    'Variable',
    'Value',
    'Lin\u212Aedid',
  ];
  const mutations: Array<(m: Buffer) => Buffer> = [
    (m) => m,
    (m) => {
      const b = Buffer.from(m);
      for (let i = 0; i < 1 + rand() * 8; i++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      return b;
    },
    (m) => m.subarray(0, Math.floor(rand() * m.length)),
    (m) => Buffer.concat([m.subarray(0, m.length - 2), Buffer.from(`${pick(keys)}: v\r\n\r\n`)]),
    (m) =>
      Buffer.from(
        m.toString('latin1').replace(/\r\n(\w)/, (_l, c: string) => `\r\n${pick(keys)}${c}`),
        'latin1',
      ),
    (m) => Buffer.from(m.toString('latin1').replaceAll('\r\n', '\n'), 'latin1'),
    (m) => Buffer.from(m.toString('latin1').replace(': ', ':'), 'latin1'),
    () => Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256))),
  ];
  const frames: Buffer[] = [Buffer.from('Asterisk Call Manager/9.0.0\r\n')];
  for (let i = 0; i < 20_000; i++) frames.push(pick(mutations)(pick(real)));
  const input = Buffer.concat(frames);
  const ref = parse(whole(input), { maxFrameBytes: 4096 });
  const expected = digest(ref.messages.map((m) => restricted(m, GATEWAY_DECODE_PLAN)));
  t.ok(ref.errors.length > 100, `${ref.errors.length} broken frames and lines`);
  for (const [how, chunks] of [
    ['whole', whole(input)],
    ['random', randomChunks(input, 11, 2048)],
  ] as const) {
    const got = parse(chunks, { decodePlan: GATEWAY_DECODE_PLAN, maxFrameBytes: 4096 });
    t.equal(digest(got.messages), expected, `${how}: identical messages (${got.messages.length})`);
    t.same(got.errors, ref.errors, `${how}: identical errors`);
  }
});
