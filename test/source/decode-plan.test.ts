// The decode plan against the code that reads AMI messages: every header src/
// reads must be one the plan decodes, found by type (any expression of type
// AmiMessage), so a new field read cannot silently get '' from the parser.
// Also the plan's own rules and what the egress guard needs.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';
import {
  GATEWAY_DECODE_PLAN,
  decodePlan,
  decodesHeader,
  extendDecodePlan,
  type DecodePlan,
} from '../../src/source/decode-plan.js';
import { readCapture } from '../../src/source/capture.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { field, type AmiMessage } from '../../src/source/ami-message.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AMI_MESSAGE_FILE = `${ROOT}src/source/ami-message.ts`;

// Files that make messages, or read ones that never came through the planned
// parser: each must parse with the whole decode (checked below).
const MAKERS = ['src/source/frame-parser.ts', 'src/source/ami-message.ts', 'src/source/decode-plan.ts'];
const WHOLE_DECODE = {
  'src/source/replay-server.ts': 'reads the actions its clients send and the capture it replays',
  'src/source/capture.ts': 'reads a capture file login response',
} as const;

interface Read {
  readonly file: string;
  readonly line: number;
  /** The lower-case header, or undefined when the read takes every header or a computed one. */
  readonly header: string | undefined;
  readonly how: string;
}

/** Every read of an AmiMessage in `files` (absolute paths), with `extra` source texts by path added to the program. */
function amiReads(files: readonly string[], extra: Record<string, string> = {}): Read[] {
  const config = ts.getParsedCommandLineOfConfigFile(
    `${ROOT}tsconfig.json`,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (config === undefined) throw new Error('tsconfig.json unreadable');
  const host = ts.createCompilerHost(config.options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name in extra ? ts.createSourceFile(name, extra[name]!, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name in extra || fileExists(name);
  const program = ts.createProgram({ rootNames: [...files, ...Object.keys(extra)], options: config.options, host });
  const checker = program.getTypeChecker();

  // The type itself: TypeScript names it by its outer alias (Readonly), not by AmiMessage.
  const amiModule = checker.getSymbolAtLocation(program.getSourceFile(AMI_MESSAGE_FILE)!)!;
  const amiType = checker.getDeclaredTypeOfSymbol(
    checker.getExportsOfModule(amiModule).find((e) => e.name === 'AmiMessage')!,
  );
  const isAmiType = (type: ts.Type): boolean => type === amiType || (type.isUnion() && type.types.includes(amiType));
  const isAmiMessage = (node: ts.Expression): boolean => isAmiType(checker.getTypeAtLocation(node));
  const isOurs = (callee: ts.Expression, name: string): boolean => {
    let symbol = checker.getSymbolAtLocation(callee);
    if (symbol !== undefined && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    return symbol?.name === name && symbol.declarations?.[0]?.getSourceFile().fileName === AMI_MESSAGE_FILE;
  };
  const literal = (node: ts.Node | undefined): string | undefined =>
    node !== undefined && ts.isStringLiteralLike(node) ? node.text : undefined;

  const reads: Read[] = [];
  for (const file of [...files, ...Object.keys(extra)]) {
    const source = program.getSourceFile(file);
    if (source === undefined) throw new Error(`not in the program: ${file}`);
    const rel = file.startsWith(ROOT) ? file.slice(ROOT.length) : file;
    const add = (node: ts.Node, header: string | undefined, how: string): void => {
      reads.push({ file: rel, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1, header, how });
    };
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node)) {
        if (isOurs(node.expression, 'field')) add(node, literal(node.arguments[1]), 'field()');
        else if (isOurs(node.expression, 'eventName')) add(node, 'event', 'eventName()');
        else
          for (const arg of node.arguments)
            if (isAmiMessage(arg) && !takesAmiMessage(checker, isAmiType, node, arg))
              add(node, undefined, 'passed whole');
      } else if (ts.isElementAccessExpression(node) && isAmiMessage(node.expression)) {
        add(node, literal(node.argumentExpression), 'msg[...]');
      } else if (ts.isPropertyAccessExpression(node) && isAmiMessage(node.expression)) {
        add(node, node.name.text, 'msg.header');
      } else if (
        (ts.isSpreadAssignment(node) || ts.isSpreadElement(node) || ts.isForInStatement(node)) &&
        isAmiMessage(ts.isForInStatement(node) ? node.expression : node.expression)
      ) {
        add(node, undefined, 'spread or for-in');
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return reads;
}

/**
 * A call whose parameter there takes an AmiMessage as such (our own readers,
 * callbacks, a Map or an array of messages): the callee gets it typed, so its
 * reads are found where they happen. Object.keys(), JSON.stringify() and the
 * like take any object: they read every header.
 */
function takesAmiMessage(
  checker: ts.TypeChecker,
  isAmiType: (type: ts.Type) => boolean,
  call: ts.CallExpression,
  arg: ts.Expression,
): boolean {
  const signature = checker.getResolvedSignature(call);
  if (signature === undefined) return false;
  const params = signature.parameters;
  const param = params[Math.min(call.arguments.indexOf(arg), params.length - 1)];
  return param !== undefined && isAmiType(checker.getTypeOfSymbol(param));
}

function srcFiles(): string[] {
  return ts.sys
    .readDirectory(`${ROOT}src`, ['.ts'], undefined, undefined)
    .filter((f) => !f.endsWith('.d.ts'))
    .sort();
}

/** Headers that, in the fixture captures, only ever come in frames the plan decodes whole. */
async function wholeOnlyHeaders(plan: DecodePlan): Promise<Set<string>> {
  const inWhole = new Set<string>();
  const inPlanned = new Set<string>();
  for (const name of ['basic-internal', 'edge-actions', 'recording-consent', 'transfers-queue']) {
    const parser = createFrameParser({
      onMessage: (m) => {
        const event = field(m, 'event');
        const whole = event === '' || plan.full.has(event) || Object.keys(m).some((k) => plan.fullIfHeader.has(k));
        for (const k of Object.keys(m)) (whole ? inWhole : inPlanned).add(k);
      },
    });
    parser.push(await readCapture(fileURLToPath(new URL(`../fixtures/ami/${name}.ami.gz`, import.meta.url))));
    parser.end();
  }
  return new Set([...inWhole].filter((k) => !inPlanned.has(k)));
}

function uncovered(reads: readonly Read[], plan: DecodePlan, wholeOnly: ReadonlySet<string>): string[] {
  const anyEvent = new Set([...plan.byEvent.values()].flatMap((s) => [...s]));
  return reads
    .filter((r) => {
      if (r.header === undefined) return true;
      const h = r.header;
      return !(h === 'event' || plan.fields.has(h) || plan.fullIfHeader.has(h) || anyEvent.has(h) || wholeOnly.has(h));
    })
    .map((r) => `${r.file}:${r.line} ${r.how} ${r.header ?? '(every header, or a computed one)'}`);
}

t.test('every AMI header src/ reads is one the gateway plan decodes', async (t) => {
  const files = srcFiles().filter((f) => !MAKERS.some((m) => f.endsWith(m)));
  const reads = amiReads(files);
  const consumers = [
    ...new Set(reads.filter((r) => !(r.file in WHOLE_DECODE)).map((r) => r.file.replace(/^src\//, ''))),
  ];
  // The scan must see the readers the plan is made for, or it proves nothing.
  for (const f of ['assemble/call-model.ts', 'consent/enforcer.ts', 'source/resync.ts'])
    t.ok(consumers.includes(f), `the scan finds the reads in src/${f}`);
  t.ok(reads.length >= 40, `${reads.length} reads found`);
  const planned = reads.filter((r) => !(r.file in WHOLE_DECODE));
  t.same(
    uncovered(planned, GATEWAY_DECODE_PLAN, await wholeOnlyHeaders(GATEWAY_DECODE_PLAN)),
    [],
    'no read the plan misses',
  );

  for (const [file, why] of Object.entries(WHOLE_DECODE)) {
    const text = readFileSync(`${ROOT}${file}`, 'utf8');
    t.ok(
      text.includes('createFrameParser(') && !text.includes('decodePlan'),
      `${file} ${why}: its own parser, decoding whole`,
    );
  }
});

t.test('the scan fails on a header the plan does not decode, and on reads of every header', async (t) => {
  const probe = `${ROOT}src/source/__probe__.ts`;
  const reads = amiReads([], {
    [probe]: [
      "import { field, type AmiMessage } from './ami-message.js';",
      'export function probe(msg: AmiMessage, key: string): unknown {',
      "  return [field(msg, 'privilege'), msg['uniqueid'], msg.destexten, field(msg, key), Object.keys(msg), { ...msg }];",
      '}',
    ].join('\n'),
  });
  const missing = uncovered(reads, GATEWAY_DECODE_PLAN, await wholeOnlyHeaders(GATEWAY_DECODE_PLAN));
  t.same(
    missing.map((m) => m.replace(/^\S+ /, '')),
    [
      'field() privilege',
      'field() (every header, or a computed one)',
      'passed whole (every header, or a computed one)',
      'spread or for-in (every header, or a computed one)',
    ],
  );
  t.same(
    reads.filter((r) => r.header === 'uniqueid' || r.header === 'destexten').map((r) => r.how),
    ['msg[...]', 'msg.header'],
    'element and property reads are found',
  );
});

t.test('the egress guard gets the parties of channel and dial events, and all of a Cdr', async (t) => {
  const parties = ['calleridnum', 'calleridname', 'connectedlinenum', 'connectedlinename', 'exten'];
  for (const event of ['Newchannel', 'NewCallerid', 'NewConnectedLine', 'DialBegin', 'DialEnd'])
    for (const h of [...parties, ...parties.map((p) => `dest${p}`)])
      t.ok(decodesHeader(GATEWAY_DECODE_PLAN, event, h), `${event} ${h}`);
  for (const h of ['source', 'destination', 'callerid', 'lastdata', 'destinationchannel', 'userfield'])
    t.ok(decodesHeader(GATEWAY_DECODE_PLAN, 'Cdr', h), `Cdr ${h}`);
  t.ok(GATEWAY_DECODE_PLAN.full.has('Cdr'));
  t.notOk(decodesHeader(GATEWAY_DECODE_PLAN, 'VarSet', 'calleridnum'), 'VarSet stays lean');
  t.ok(decodesHeader(GATEWAY_DECODE_PLAN, '', 'anything'), 'responses are whole');
});

t.test('plans: checked names, unions, and what a message carries', async (t) => {
  for (const bad of ['UniqueID', 'a:b', 'with space', '', '__proto__', 'caf\u00e9'])
    t.throws(() => decodePlan({ fields: [bad] }), { code: 'GW_CONFIG_INVALID' }, JSON.stringify(bad));
  t.throws(() => decodePlan({ byEvent: { VarSet: ['Value'] } }), { code: 'GW_CONFIG_INVALID' });
  const base = decodePlan({ full: ['Cdr'], fields: ['uniqueid'], byEvent: { VarSet: ['variable'] } });
  const more = extendDecodePlan(base, {
    full: ['Status'],
    fields: ['linkedid'],
    byEvent: { VarSet: ['value'], Hangup: ['cause'] },
  });
  t.same([...more.full], ['Cdr', 'Status']);
  t.same([...more.fields], ['uniqueid', 'linkedid']);
  t.same([...more.byEvent.get('VarSet')!], ['variable', 'value']);
  t.same([...more.byEvent.get('Hangup')!], ['cause']);
  t.same([...base.byEvent.get('VarSet')!], ['variable'], 'the base plan is untouched');
  t.ok(decodesHeader(more, 'Hangup', 'cause'));
  t.notOk(decodesHeader(more, 'Newstate', 'cause'));
  t.ok(decodesHeader(more, 'Newstate', 'event'), 'the event name always');

  // What the parser does with it, on one frame.
  const got: AmiMessage[] = [];
  const parser = createFrameParser({ decodePlan: more, onMessage: (m) => got.push(m) });
  parser.push(Buffer.from('Event: Hangup\r\nUniqueid: a\r\nCause: 16\r\nLinkedid: b\r\nChannel: x\r\n\r\n'));
  parser.push(Buffer.from('Event: Newstate\r\nUniqueid: a\r\nCause: 16\r\n\r\n'));
  t.same(got, [
    { event: 'Hangup', uniqueid: 'a', cause: '16', linkedid: 'b' },
    { event: 'Newstate', uniqueid: 'a' },
  ]);
});
