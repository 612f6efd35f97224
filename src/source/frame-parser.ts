// Streaming AMI framing: bytes in any chunking, one AmiMessage per frame out.
// Pure (no I/O, no timers): the socket adapters and the capture tools feed it.
import type { AmiMessage } from './ami-message.js';

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
  const reader = createFrameReader(opts.compileShapes ?? true, onError);

  // The unfinished frame carried over from earlier chunks.
  let parts: Buffer[] = [];
  let carriedBytes = 0;
  let discarding = false;
  let tail = LINE_START;
  let atStreamStart = true;

  function finishFrame(chunk: Buffer, start: number, end: number): void {
    const bytes = carriedBytes + (end - start);
    const greetingAllowed = atStreamStart;
    atStreamStart = false;
    if (discarding || bytes > maxFrameBytes) {
      onError('oversized', bytes);
    } else {
      let text: string;
      if (parts.length === 0) {
        text = chunk.toString('utf8', start, end);
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
      let start = 0;
      // Cached pattern positions: -2 not searched yet, -1 none left in this chunk.
      let nextCrlf = -2;
      let nextLf = -2;
      for (;;) {
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
