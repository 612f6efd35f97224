// Streaming AMI framing: bytes in any chunking, one AmiMessage per frame out.
// Pure (no I/O, no timers): the socket adapters and the capture tools feed it.
// With a decode plan, most events are decoded for the plan's headers only.
import { isAscii } from 'node:buffer';
import { field, type AmiMessage } from './ami-message.js';
import type { DecodePlan } from './decode-plan.js';

export type FrameErrorKind = 'oversized' | 'malformed';

export interface FrameParserOptions {
  /** Largest frame kept, in bytes up to its terminating blank line. Default 64 KiB. */
  readonly maxFrameBytes?: number;
  readonly onMessage: (msg: AmiMessage) => void;
  /**
   * Something was dropped; only its kind and size are reported, never content.
   * 'oversized': a whole frame (reported once, when its blank line or end() arrives).
   * 'malformed': one line without ':' (the rest of its frame is kept), or an
   * unterminated frame at end().
   */
  readonly onError?: (kind: FrameErrorKind, bytes: number) => void;
  /** Compile a builder per frame shape (default). False: always the generic builder; same output, slower. */
  readonly compileShapes?: boolean;
  /**
   * Which headers to decode (src/source/decode-plan.ts). Without one, every
   * frame is decoded whole. With one, an event the plan does not name whole
   * yields only the plan's headers; the message is otherwise the one the whole
   * decode gives (same values, arrays for repeats, same errors).
   */
  readonly decodePlan?: DecodePlan;
}

export interface FrameParser {
  /**
   * Calls onMessage synchronously for every frame the chunk completes (do not
   * push() from inside it). An unfinished frame's bytes are kept by reference:
   * do not reuse a pushed buffer.
   */
  push(chunk: Buffer): void;
  /** End of stream: a frame without its blank line is dropped and reported; the parser is then ready for a new stream. */
  end(): void;
}

export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
// A frame ends at an empty line: "\n" followed by "\r\n" or (tolerated) "\n".
const CRLF_END = Buffer.from('\n\r\n');
const LF_END = Buffer.from('\n\n');
const GREETING = 'Asterisk Call Manager/';

// Where the bytes before the scan position left us, so that a blank line
// split across two chunks is still seen.
const MID_LINE = 0;
const LINE_START = 1;
const LINE_START_CR = 2;

type MutableMessage = Record<string, string | string[]>;

export function createFrameParser(opts: FrameParserOptions): FrameParser {
  const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const onMessage = opts.onMessage;
  const onError = opts.onError ?? noop;
  const whole = createFrameReader(opts.compileShapes ?? true, onError);
  const planned =
    opts.decodePlan === undefined ? undefined : createPlannedReader(opts.decodePlan, whole, opts.compileShapes ?? true);
  const reader = planned ?? whole;

  // The unfinished frame carried over from earlier chunks.
  let parts: Buffer[] = [];
  let carriedBytes = 0;
  let discarding = false;
  let tail = LINE_START;
  let atStreamStart = true;

  // Whether the chunk being pushed is ASCII: its frames then decode as latin1, a plain copy, to the same text.
  let ascii = false;

  function finishFrame(chunk: Buffer, start: number, end: number): void {
    const bytes = carriedBytes + (end - start);
    const greetingAllowed = atStreamStart;
    atStreamStart = false;
    if (discarding || bytes > maxFrameBytes) {
      onError('oversized', bytes);
    } else {
      let text: string;
      if (parts.length === 0) {
        text = chunk.toString(ascii ? 'latin1' : 'utf8', start, end);
      } else {
        parts.push(chunk.subarray(start, end));
        text = Buffer.concat(parts, bytes).toString('utf8');
      }
      const msg = reader.read(text, greetingAllowed);
      if (msg !== null) onMessage(msg);
    }
    parts = [];
    carriedBytes = 0;
    discarding = false;
  }

  function carry(chunk: Buffer, start: number): void {
    const len = chunk.length;
    carriedBytes += len - start;
    if (!discarding && carriedBytes > maxFrameBytes) {
      discarding = true;
      parts = [];
    }
    if (!discarding && start < len) parts.push(start === 0 ? chunk : chunk.subarray(start));
    tail = tailAfter(chunk, tail);
  }

  return {
    push(chunk) {
      const len = chunk.length;
      if (len === 0) return;
      ascii = isAscii(chunk);
      let start = 0;
      // Cached pattern positions: -2 not searched yet, -1 none left in this chunk.
      let nextCrlf = -2;
      let nextLf = -2;
      for (;;) {
        if (planned !== undefined && ascii && tail === LINE_START && carriedBytes === 0 && !atStreamStart) {
          let end = planned.scan(chunk, start, maxFrameBytes);
          if (end === NOT_PLANNED) {
            // Searching the chunk for the next blank line would cost more than following the lines.
            end = blankLineAfter(chunk, start);
            if (end === INCOMPLETE) break;
            finishFrame(chunk, start, end);
          } else {
            if (end === INCOMPLETE) break;
            const bytes = end - start;
            if (bytes > maxFrameBytes) onError('oversized', bytes);
            else onMessage(planned.take(chunk));
          }
          start = end + 1;
          if (start >= len) return;
          continue;
        }
        let endNl = -1;
        if (tail === LINE_START && start < len) {
          const c = chunk[start];
          if (c === LF) endNl = start;
          else if (c === CR && start + 1 < len && chunk[start + 1] === LF) endNl = start + 1;
        } else if (tail === LINE_START_CR && chunk[start] === LF) {
          endNl = start;
        }
        if (endNl === -1) {
          if (nextCrlf !== -1 && nextCrlf < start) nextCrlf = chunk.indexOf(CRLF_END, start);
          if (nextLf !== -1 && nextLf < start) nextLf = chunk.indexOf(LF_END, start);
          if (nextCrlf === -1 && nextLf === -1) break;
          if (nextLf === -1 || (nextCrlf !== -1 && nextCrlf < nextLf)) endNl = nextCrlf + 2;
          else endNl = nextLf + 1;
        }
        finishFrame(chunk, start, endNl);
        start = endNl + 1;
        tail = LINE_START;
        if (start >= len) return;
      }
      carry(chunk, start);
    },
    end() {
      if (discarding) {
        onError('oversized', carriedBytes);
      } else if (parts.length > 0) {
        const text = Buffer.concat(parts, carriedBytes).toString('utf8');
        if (hasContent(text, atStreamStart)) onError('malformed', carriedBytes);
      }
      parts = [];
      carriedBytes = 0;
      discarding = false;
      tail = LINE_START;
      atStreamStart = true;
    },
  };
}

// Real AMI has few distinct frame shapes (the load capture: 30), so each key
// sequence is learnt once: lower-cased keys and a builder compiled for it.
// Objects built in one literal keep V8's fast properties; assigning 20+ keys
// one by one turns them into slow dictionaries. The table is bounded so
// hostile input cannot grow it; past its limits, and for repeated keys or
// "__proto__", a generic builder is used.
interface Shape {
  readonly keys: readonly string[];
  /** Next shape, by the raw key text of the following line. */
  readonly next: Map<string, Shape>;
  build: Builder | undefined;
}

type Builder = (values: readonly string[]) => MutableMessage;

// Real frames: up to 44 lines, keys up to 27 characters. Longer frames (big
// Command outputs) and odd keys take the generic path, keeping the table small.
const MAX_SHAPES = 2048;
const MAX_SHAPE_FIELDS = 96;
const MAX_SHAPE_KEY_CHARS = 64;

interface FrameReader {
  /** One frame's text (`Key: Value` lines) to a message; null when no line survives. */
  read(text: string, greetingAllowed: boolean): AmiMessage | null;
}

function createFrameReader(compile: boolean, onError: (kind: FrameErrorKind, bytes: number) => void): FrameReader {
  const root: Shape = { keys: [], next: new Map(), build: undefined };
  let shapes = 1;
  const values: string[] = [];

  function addShape(parent: Shape, rawKey: string, key: string): Shape {
    const shape: Shape = { keys: [...parent.keys, key], next: new Map(), build: undefined };
    parent.next.set(rawKey, shape);
    shapes++;
    return shape;
  }

  return {
    read(text, greetingAllowed) {
      const n = text.length;
      let shape: Shape | undefined = root;
      // The frame's keys once it left the shape table.
      let generic: string[] | undefined;
      let count = 0;
      let pos = greetingAllowed ? skipGreeting(text) : 0;
      while (pos < n) {
        let nl = text.indexOf('\n', pos);
        if (nl === -1) nl = n;
        const end = nl > pos && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
        if (end > pos) {
          const sep = keyEnd(text, pos, end);
          const rawKey = sep === -1 ? '' : text.slice(pos, sep);
          const known = shape?.next.get(rawKey);
          if (known !== undefined) {
            shape = known;
          } else {
            const key = rawKey.trim().toLowerCase();
            if (key.length === 0) {
              onError('malformed', Buffer.byteLength(text.slice(pos, end)));
              pos = nl + 1;
              continue;
            }
            if (
              shape !== undefined &&
              shapes < MAX_SHAPES &&
              shape.keys.length < MAX_SHAPE_FIELDS &&
              rawKey.length <= MAX_SHAPE_KEY_CHARS
            ) {
              shape = addShape(shape, rawKey, key);
            } else {
              generic ??= [...(shape?.keys ?? [])];
              generic.push(key);
              shape = undefined;
            }
          }
          values[count++] = text.slice(text.charCodeAt(sep + 1) === SPACE ? sep + 2 : sep + 1, end);
        }
        pos = nl + 1;
      }
      if (count === 0) return null;
      if (shape === undefined) return buildGeneric(generic ?? [], values, count);
      shape.build ??= compileBuilder(shape.keys, compile);
      return shape.build(values);
    },
  };
}

// The planned path reads a frame only as far as it must, straight from the
// chunk's bytes: the event name from the first line, then each line's first
// byte, then only the keys that can be wanted ones, compared in place (the
// others are only checked for their ':'); only the wanted values are cut, from
// the text of their own lines. It finds the frame's end as it goes, so planned
// frames are never searched for. It takes frames of ASCII chunks that are
// regular where it reads them (`Event: ` first, a wanted key exactly followed
// by ': '); every other frame, and each one the plan wants whole, is decoded
// whole, and a planned event then keeps only the plan's headers. So both paths
// give the same messages and report the same errors, and odd input behaves as
// it always did.

/** The wanted headers of one event, indexed by their first character. */
interface EventDecoder {
  readonly whole: boolean;
  /** Lower-case keys; 'event' is index 0. */
  readonly keys: readonly string[];
  readonly wanted: ReadonlySet<string>;
  /** Keys whose presence sends the frame to the whole decode. */
  readonly wholeIf: readonly boolean[];
  /** Byte (either case) -> first key index starting with it, -1 when none. */
  readonly byFirst: Int16Array;
  /** Key index -> next key index with the same first character, -1 at the end. */
  readonly chain: Int16Array;
  /** Per line of the frame after the first: where the last frame had its ':' on an unread line, 0 unknown. */
  readonly colons: Uint8Array;
  /** Builders by the sequence of keys found, as the whole decode learns frame shapes. */
  readonly root: Found;
  nodes: number;
}

/** A sequence of found keys, starting with 'event'. */
interface Found {
  readonly keys: readonly string[];
  readonly next: Array<Found | undefined>;
  build: Builder | undefined;
}

const EVENT_LINE = Buffer.from('Event: ');
const COLON = 0x3a;
const DEL = 0x7f;
const MAX_FOUND_NODES = 1024;
const GUESSED_LINES = 64;

function compileDecoder(fields: Iterable<string>, wholeIf: ReadonlySet<string>): EventDecoder {
  const keys = [...new Set(['event', ...fields, ...wholeIf])];
  const byFirst = new Int16Array(DEL).fill(-1);
  const chain = new Int16Array(keys.length).fill(-1);
  // Backwards, so a chain lists keys in plan order.
  for (let i = keys.length - 1; i >= 0; i--) {
    const first = keys[i]!.charCodeAt(0);
    chain[i] = byFirst[first]!;
    byFirst[first] = i;
    const upper = keys[i]![0]!.toUpperCase().charCodeAt(0);
    if (upper !== first) byFirst[upper] = i;
  }
  return {
    whole: false,
    keys,
    wanted: new Set(keys),
    wholeIf: keys.map((k) => wholeIf.has(k)),
    byFirst,
    chain,
    colons: new Uint8Array(GUESSED_LINES),
    root: { keys: ['event'], next: [], build: undefined },
    nodes: 1,
  };
}

const WHOLE: EventDecoder = { ...compileDecoder([], new Set()), whole: true };

interface KnownName {
  readonly bytes: Buffer;
  readonly name: string;
  readonly decoder: EventDecoder;
}

const NAME_BITS = 8;
const NAME_SLOTS = 1 << NAME_BITS;

function sameBytes(chunk: Buffer, start: number, end: number, bytes: Buffer): boolean {
  if (end - start !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (chunk[start + i] !== bytes[i]) return false;
  return true;
}

/** What PlannedReader.scan() returns besides a frame's end. */
const INCOMPLETE = -1;
const NOT_PLANNED = -2;
/** What readLines() returns besides a count. */
const IRREGULAR_FRAME = -1;
const NO_BLANK_LINE = -2;
/** Where readLines() found the frame's end: its blank line's LF. */
let frameEnd = 0;

interface PlannedReader extends FrameReader {
  /**
   * Scans the frame that starts at chunk[start], a line start, for the plan's
   * headers: returns the index of its blank line's LF (take() then builds the
   * message), INCOMPLETE when the chunk ends first, or NOT_PLANNED when the
   * frame must be decoded whole (then read() takes it), as one longer than
   * maxBytes is: its lines are not gathered, and the whole path drops it.
   */
  scan(chunk: Buffer, start: number, maxBytes: number): number;
  /** The message of the frame scan() just found in `chunk`. */
  take(chunk: Buffer): MutableMessage;
}

function createPlannedReader(plan: DecodePlan, whole: FrameReader, compile: boolean): PlannedReader {
  // No event name: a response (or an event without one), read whole like responses.
  const byEvent = new Map<string, EventDecoder>([['', WHOLE]]);
  for (const event of plan.full) byEvent.set(event, WHOLE);
  for (const [event, extra] of plan.byEvent)
    if (!plan.full.has(event)) byEvent.set(event, compileDecoder([...plan.fields, ...extra], plan.fullIfHeader));
  const others = compileDecoder(plan.fields, plan.fullIfHeader);
  const decoderOf = (name: string): EventDecoder => byEvent.get(name) ?? others;
  // Recent event names, so a frame's name is compared in place, not decoded and hashed.
  const names: Array<KnownName | undefined> = new Array<KnownName | undefined>(NAME_SLOTS).fill(undefined);
  function knownName(chunk: Buffer, start: number, end: number): KnownName {
    const length = end - start;
    // Length, first, middle and last byte, mixed (the 53 names of the fixtures share 4 slots, rare ones).
    const mix = length ^ (chunk[start]! << 8) ^ (chunk[end - 1]! << 16) ^ (chunk[start + (length >> 1)]! << 24);
    const slot = length === 0 ? 0 : Math.imul(mix, 0x9e3779b1) >>> (32 - NAME_BITS);
    const cached = names[slot];
    if (cached !== undefined && sameBytes(chunk, start, end, cached.bytes)) return cached;
    const name = chunk.toString('latin1', start, end);
    const known = { bytes: Buffer.from(chunk.subarray(start, end)), name, decoder: decoderOf(name) };
    names[slot] = known;
    return known;
  }
  // The last scanned frame's headers: key index and value span, index 0 the event name.
  const order: number[] = [];
  const from: number[] = [];
  const to: number[] = [];
  const values: string[] = [];
  let decoder = others;
  let count = 0;

  return {
    read(text, greetingAllowed) {
      const msg = whole.read(text, greetingAllowed);
      if (msg === null) return null;
      const d = decoderOf(field(msg, 'event'));
      if (d.whole) return msg;
      const kept: MutableMessage = {};
      for (const key of Object.keys(msg)) {
        if (!d.wanted.has(key)) continue;
        if (d.wholeIf[d.keys.indexOf(key)]) return msg;
        kept[key] = msg[key] as string | string[];
      }
      return kept;
    },
    scan(chunk, start, maxBytes) {
      const len = chunk.length;
      const nameAt = start + EVENT_LINE.length;
      if (nameAt > len) return NOT_PLANNED;
      for (let i = 0; i < EVENT_LINE.length; i++) if (chunk[start + i] !== EVENT_LINE[i]) return NOT_PLANNED;
      const nl = chunk.indexOf(LF, nameAt);
      if (nl === -1) return INCOMPLETE;
      const known = knownName(chunk, nameAt, lineEnd(chunk, nameAt, nl));
      const d = known.decoder;
      if (d.whole) return NOT_PLANNED;
      values[0] = known.name;
      const found = readLines(chunk, nl + 1, start + maxBytes + 1, d, order, from, to);
      if (found === IRREGULAR_FRAME) return NOT_PLANNED;
      if (found === NO_BLANK_LINE) return INCOMPLETE;
      decoder = d;
      count = found;
      return frameEnd;
    },
    take(chunk) {
      if (count > 1) {
        // Values are cut from the text of their own lines: cut from the chunk's, a kept one would keep all of it alive.
        const start = from[1]!;
        const text = chunk.toString('latin1', start, to[count - 1]!);
        for (let i = 1; i < count; i++) values[i] = text.slice(from[i]! - start, to[i]! - start);
      }
      let node: Found | undefined = decoder.root;
      for (let i = 1; i < count && node !== undefined; i++) {
        const k = order[i]!;
        let next: Found | undefined = node.next[k];
        if (next === undefined && decoder.nodes < MAX_FOUND_NODES) {
          next = { keys: [...node.keys, decoder.keys[k]!], next: [], build: undefined };
          node.next[k] = next;
          decoder.nodes++;
        }
        node = next;
      }
      if (node === undefined) {
        const keys = order.slice(1, count).map((k) => decoder.keys[k]!);
        return buildGeneric(['event', ...keys], values, count);
      }
      node.build ??= compileBuilder(node.keys, compile);
      return node.build(values);
    },
  };
}

/**
 * Reads the lines from `pos` to the frame's blank line, noting each wanted
 * header's key index and value span from index 1, and the frame's end in
 * frameEnd. Returns how many headers there are counting the event name,
 * IRREGULAR_FRAME when a wanted header's line is not regular or calls for the
 * whole decode, or a line starts at `limit` (too long a frame), NO_BLANK_LINE
 * when the chunk ends first.
 *
 * A line whose first byte starts no wanted key is not compared: its trimmed,
 * lower-cased key cannot be a wanted one (the only non-ASCII character that
 * lower-cases to ASCII, U+212A, is not in an ASCII chunk).
 */
function readLines(
  chunk: Buffer,
  pos: number,
  limit: number,
  decoder: EventDecoder,
  order: number[],
  from: number[],
  to: number[],
): number {
  const n = chunk.length;
  const { keys, byFirst, chain, wholeIf, colons } = decoder;
  let count = 1;
  let line = 0;
  for (;;) {
    if (pos >= n) return NO_BLANK_LINE;
    if (pos >= limit) return IRREGULAR_FRAME;
    const first = chunk[pos]!;
    if (!(first > SPACE && first < DEL)) {
      if (first === LF) {
        frameEnd = pos;
        return count;
      }
      if (first === CR) {
        if (pos + 1 >= n) return NO_BLANK_LINE;
        if (chunk[pos + 1] === LF) {
          frameEnd = pos + 1;
          return count;
        }
      }
      // A key with leading white space may trim to a wanted key.
      return IRREGULAR_FRAME;
    }
    const nl = chunk.indexOf(LF, pos + 1);
    if (nl === -1) return NO_BLANK_LINE;
    let k = byFirst[first]!;
    for (; k !== -1; k = chain[k]!) {
      const key = keys[k]!;
      const after = pos + key.length;
      const c = chunk[after];
      // A longer key ('ChannelState' for 'channel'); past the chunk's end, undefined.
      if (c !== COLON && c !== undefined && c > SPACE && c < DEL) continue;
      if (!sameKey(chunk, pos, key)) continue;
      // Trailing white space, a missing ': ', ActionID: the whole decode decides.
      if (c !== COLON || chunk[after + 1] !== SPACE || wholeIf[k]) return IRREGULAR_FRAME;
      order[count] = k;
      from[count] = after + 2;
      to[count++] = lineEnd(chunk, after + 2, nl);
      break;
    }
    // A line left unread must still have its ':', or the whole decode reports it as malformed.
    // Frames of one event repeat their keys, so where the last frame had it, this one mostly has too.
    if (k === -1) {
      // An empty key.
      if (first === COLON) return IRREGULAR_FRAME;
      const guess = line < GUESSED_LINES ? colons[line]! : 0;
      if (guess === 0 || pos + guess >= nl || chunk[pos + guess] !== COLON) {
        let i = pos + 1;
        while (i < nl && chunk[i] !== COLON) i++;
        if (i === nl) return IRREGULAR_FRAME;
        if (line < GUESSED_LINES) colons[line] = i - pos > 255 ? 0 : i - pos;
      }
    }
    line++;
    pos = nl + 1;
  }
}

/** Whether chunk[pos...] lower-cases to `key`, whose first character matched already. */
function sameKey(chunk: Buffer, pos: number, key: string): boolean {
  for (let i = 1; i < key.length; i++) {
    const c = chunk[pos + i]!;
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== key.charCodeAt(i)) return false;
  }
  return true;
}

/** End of a line's content: before the CR of its CRLF, never before `start`. */
function lineEnd(chunk: Buffer, start: number, nl: number): number {
  return nl > start && chunk[nl - 1] === CR ? nl - 1 : nl;
}

/** The LF of the first blank line from `pos`, a line start; INCOMPLETE when the chunk ends first. */
function blankLineAfter(chunk: Buffer, pos: number): number {
  for (;;) {
    const c = chunk[pos];
    if (c === LF) return pos;
    if (c === CR && chunk[pos + 1] === LF) return pos + 1;
    const nl = chunk.indexOf(LF, pos + 1);
    if (nl === -1) return INCOMPLETE;
    pos = nl + 1;
  }
}

/** Index of the ':' that ends the key (the first ': ', else the first ':'); -1 when the line has none. */
function keyEnd(text: string, start: number, end: number): number {
  let sep = text.indexOf(': ', start);
  if (sep !== -1 && sep < end) return sep;
  sep = text.indexOf(':', start);
  return sep !== -1 && sep < end ? sep : -1;
}

function compileBuilder(keys: readonly string[], compile: boolean): Builder {
  const plain = new Set(keys).size === keys.length && !keys.includes('__proto__');
  if (compile && plain) {
    const body = `return {${keys.map((k, i) => `${JSON.stringify(k)}: v[${i}]`).join(', ')}};`;
    try {
      return new Function('v', body) as Builder;
    } catch {
      // Code generation disabled (--disallow-code-generation-from-strings): stay generic.
    }
  }
  return (values) => buildGeneric(keys, values, keys.length);
}

/** Repeated keys collect their values in order. */
function buildGeneric(keys: readonly string[], values: readonly string[], count: number): MutableMessage {
  const msg: MutableMessage = {};
  for (let i = 0; i < count; i++) {
    const key = keys[i]!;
    const value = values[i]!;
    // Inherited Object.prototype members are functions or objects, never a
    // string or an array, so these checks only match keys this frame set.
    const prev = msg[key];
    if (typeof prev === 'string') setOwn(msg, key, [prev, value]);
    else if (Array.isArray(prev)) prev.push(value);
    else setOwn(msg, key, value);
  }
  return msg;
}

function setOwn(msg: MutableMessage, key: string, value: string | string[]): void {
  // A plain assignment to "__proto__" would change the prototype instead.
  if (key === '__proto__')
    Object.defineProperty(msg, key, { value, enumerable: true, writable: true, configurable: true });
  else msg[key] = value;
}

function skipGreeting(text: string): number {
  if (!text.startsWith(GREETING)) return 0;
  const nl = text.indexOf('\n');
  return nl === -1 ? text.length : nl + 1;
}

function hasContent(text: string, greetingAllowed: boolean): boolean {
  return text.slice(greetingAllowed ? skipGreeting(text) : 0).trim().length > 0;
}

/** The line state after `chunk`, given the state before it. */
function tailAfter(chunk: Buffer, before: number): number {
  const len = chunk.length;
  const last = chunk[len - 1];
  if (last === LF) return LINE_START;
  if (last !== CR) return MID_LINE;
  const atLineStart = len >= 2 ? chunk[len - 2] === LF : before === LINE_START;
  return atLineStart ? LINE_START_CR : MID_LINE;
}

function noop(): void {}
