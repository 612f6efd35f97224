// More traffic than the real capture holds: copies of its real frames,
// re-numbered and re-timed. Every frame keeps its real keys in their real
// order; only values change, and inside them only three kinds of token:
// - Asterisk ids (`pbx-lab-1795418608.232`, wherever they appear: Uniqueid,
//   Linkedid, DestUniqueid, ...): epoch + k*period, sequence + k*10^4, so each
//   copy has fresh Uniqueids and Linkedids;
// - phone numbers (7-15 digit runs): their last two digits are changed, which
//   keeps them inside the reserved drama/test ranges the capture uses;
// - times (`YYYY-MM-DD HH:MM:SS`, EventTV): shifted by k whole capture periods.
// Copy 0 is the real capture, byte for byte (checked by selfCheck()).
//
// Values are interned once, so a copy costs a pass over the distinct values,
// and the harness stays small next to the pipeline whose memory is measured.
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { isDeepStrictEqual } from 'node:util';
import { createGunzip } from 'node:zlib';
import type { AmiMessage } from '../../src/source/ami-message.js';
import { createFrameParser } from '../../src/source/frame-parser.js';

const SEQ_STRIDE = 10_000;
const NUMBER_STEP = 37;
// Alternatives: an Asterisk id's epoch.sequence | a wall-clock time | a phone number (head + last two digits).
const TOKENS =
  /(?<!\d)(\d{10})\.(\d+)(?!\d)|(\d{4})-(\d{2})-(\d{2})([ T])(\d{2}):(\d{2}):(\d{2})|(?<![0-9A-Za-z.+-])(\+?\d{5,13})(\d{2})(?![\d.])/g;
const HAS_TOKEN = new RegExp(TOKENS.source);
const TIME = /(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/g;

type Builder = (values: readonly string[]) => AmiMessage;

interface Shape {
  /** Raw line heads (`Key: `) in order, for regenerating the bytes. */
  readonly heads: readonly string[];
  /** Line positions that carry a field (a line with an empty key is skipped, as the parser skips it). */
  readonly fieldLines: readonly number[];
  readonly build: Builder;
}

export interface TrafficCopy {
  readonly k: number;
  /** A new message object for frame i of this copy, as the frame parser would have built it. */
  message(frame: number): AmiMessage;
  /** The copy as AMI bytes (body only: no greeting or login response). */
  text(): Buffer;
}

export interface SyntheticTraffic {
  readonly framesPerCopy: number;
  readonly eventsPerCopy: number;
  /** Distinct Linkedids in one copy. */
  readonly callsPerCopy: number;
  readonly periodSec: number;
  readonly distinctValues: number;
  readonly rewrittenValues: number;
  /** Calls (Linkedids) first seen before frame i of a copy. */
  callsBefore(frame: number): number;
  /** Cdr events among frames before i of a copy. */
  isEvent(frame: number): boolean;
  copy(k: number): TrafficCopy;
  /** Copy 0 is the capture's body byte for byte, and its messages equal the frame parser's for the first `frames` frames. */
  selfCheck(body: Buffer, frames?: number): void;
}

/** From the capture's body in memory (the end-to-end benchmarks have it anyway). */
export function syntheticTraffic(body: Buffer): SyntheticTraffic {
  const text = body.toString('utf8');
  const builder = createBuilder();
  let pos = 0;
  while (pos < text.length) {
    const end = text.indexOf('\r\n\r\n', pos);
    if (end === -1) throw new Error(`synthetic: unterminated frame at ${pos}`);
    builder.add(text.slice(pos, end));
    pos = end + 4;
  }
  return builder.finish();
}

/**
 * Streamed from the gzipped capture, one frame at a time, for the memory
 * benchmark: the 57 MB capture is never in memory at once, so the harness
 * does not inflate the RSS it measures. Greeting and login response are left out.
 */
export async function streamSyntheticTraffic(
  gzPath: string,
  /** Frames left out of the traffic (their text, without the closing blank line). */
  skip?: (frame: string) => boolean,
): Promise<SyntheticTraffic> {
  const builder = createBuilder();
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let first = true;
  for await (const chunk of createReadStream(gzPath).pipe(createGunzip())) {
    carry += decoder.write(chunk as Buffer);
    let pos = 0;
    for (;;) {
      const end = carry.indexOf('\r\n\r\n', pos);
      if (end === -1) break;
      const frame = carry.slice(pos, end);
      pos = end + 4;
      if (first) {
        first = false;
        if (frame.startsWith('Asterisk Call Manager/') && frame.includes('Authentication accepted')) continue;
      }
      if (skip?.(frame) === true) continue;
      builder.add(frame);
    }
    carry = carry.slice(pos);
  }
  if (carry.length > 0) throw new Error('synthetic: unterminated last frame');
  return builder.finish();
}

/** Growable Uint32Array: a plain number[] of two million ids would cost 17 MB on the heap. */
class U32 {
  private a = new Uint32Array(1 << 16);
  length = 0;
  push(v: number): void {
    if (this.length === this.a.length) {
      const b = new Uint32Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.length++] = v;
  }
  done(): Uint32Array {
    return this.a.slice(0, this.length);
  }
}

function createBuilder(): { add(frame: string): void; finish(): SyntheticTraffic } {
  const shapes: Shape[] = [];
  const shapeIds = new Map<string, number>();
  const pool: string[] = [];
  const poolIds = new Map<string, number>();
  const frameShape = new U32();
  const frameStart = new U32();
  frameStart.push(0);
  const valueIds = new U32();
  const events = new U32();
  const firstCalls = new U32();
  firstCalls.push(0);
  const seenCalls = new Set<string>();

  function intern(value: string): number {
    let id = poolIds.get(value);
    if (id === undefined) {
      // A flat copy: a slice would keep the string it was cut from alive.
      const own = flat(value);
      id = pool.length;
      pool.push(own);
      poolIds.set(own, id);
    }
    return id;
  }

  function add(frame: string): void {
    const lines = frame.split('\r\n');
    const heads: string[] = [];
    let linked: string | undefined;
    let isEventFrame = false;
    for (const line of lines) {
      let sep = line.indexOf(': ');
      let valueAt = sep + 2;
      if (sep === -1) {
        sep = line.indexOf(':');
        valueAt = sep + 1;
      }
      if (sep === -1) throw new Error('synthetic: a line without ":" (not in the load capture; not supported)');
      const head = line.slice(0, valueAt);
      const value = line.slice(valueAt);
      heads.push(head);
      valueIds.push(intern(value));
      const key = head.slice(0, sep).trim().toLowerCase();
      if (key === 'linkedid') linked = value;
      if (key === 'event') isEventFrame = true;
    }
    const shapeKey = heads.join('\n');
    let shape = shapeIds.get(shapeKey);
    if (shape === undefined) {
      shape = shapes.length;
      shapeIds.set(flat(shapeKey), shape);
      shapes.push(makeShape(heads.map(flat)));
    }
    frameShape.push(shape);
    frameStart.push(valueIds.length);
    events.push(isEventFrame ? 1 : 0);
    if (linked !== undefined && !seenCalls.has(linked)) seenCalls.add(flat(linked));
    firstCalls.push(seenCalls.size);
  }

  return {
    add,
    finish: () =>
      finish(
        shapes,
        pool,
        frameShape.done(),
        frameStart.done(),
        valueIds.done(),
        events.done(),
        firstCalls.done(),
        seenCalls.size,
      ),
  };
}

function finish(
  shapes: readonly Shape[],
  pool: readonly string[],
  shapeOf: Uint32Array,
  starts: Uint32Array,
  ids: Uint32Array,
  eventFrames: Uint32Array,
  callsBeforeFrame: Uint32Array,
  callsPerCopy: number,
): SyntheticTraffic {
  const rewritable = pool.map((v, i) => (HAS_TOKEN.test(v) ? i : -1)).filter((i) => i >= 0);
  const periodSec = capturePeriod(rewritable.map((i) => pool[i]!));
  const frames = shapeOf.length;

  let cached: TrafficCopy | undefined;
  const scratch: string[] = [];

  function copy(k: number): TrafficCopy {
    if (cached?.k === k) return cached;
    let values = pool as string[];
    if (k !== 0) {
      values = pool.slice();
      for (const i of rewritable) values[i] = rewrite(pool[i]!, k, periodSec);
    }
    cached = {
      k,
      message(frame) {
        const shape = shapes[shapeOf[frame]!]!;
        const from = starts[frame]!;
        const fieldLines = shape.fieldLines;
        for (let j = 0; j < fieldLines.length; j++) scratch[j] = values[ids[from + fieldLines[j]!]!]!;
        return shape.build(scratch);
      },
      text() {
        const parts: Buffer[] = [];
        let s = '';
        for (let f = 0; f < frames; f++) {
          const heads = shapes[shapeOf[f]!]!.heads;
          const from = starts[f]!;
          for (let j = 0; j < heads.length; j++) s += heads[j]! + values[ids[from + j]!]! + '\r\n';
          s += '\r\n';
          if (s.length > 1 << 22) {
            parts.push(Buffer.from(s, 'utf8'));
            s = '';
          }
        }
        parts.push(Buffer.from(s, 'utf8'));
        return Buffer.concat(parts);
      },
    };
    return cached;
  }

  return {
    framesPerCopy: frames,
    eventsPerCopy: eventFrames.reduce((n, e) => n + e, 0),
    callsPerCopy,
    periodSec,
    distinctValues: pool.length,
    rewrittenValues: rewritable.length,
    callsBefore: (frame) => callsBeforeFrame[frame]!,
    isEvent: (frame) => eventFrames[frame] === 1,
    copy,
    selfCheck(original, checkFrames = 20_000) {
      if (!copy(0).text().equals(original)) throw new Error('synthetic: copy 0 is not the capture byte for byte');
      const parsed: AmiMessage[] = [];
      const parser = createFrameParser({ onMessage: (m) => void (parsed.length < checkFrames && parsed.push(m)) });
      parser.push(original);
      parser.end();
      const c = copy(0);
      for (let f = 0; f < Math.min(checkFrames, parsed.length); f++) {
        if (!isDeepStrictEqual({ ...c.message(f) }, { ...parsed[f] }))
          throw new Error(`synthetic: frame ${f} differs from the frame parser's message`);
      }
      const one = copy(1);
      for (let f = 0; f < Math.min(frames, 2_000); f++) {
        const a = c.message(f);
        const b = one.message(f);
        if (Object.keys(a).join() !== Object.keys(b).join())
          throw new Error(`synthetic: copy 1 frame ${f} changed shape`);
      }
    },
  };
}

function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** As the frame parser builds messages: lower-cased keys, one object literal per shape, repeated keys as arrays. */
function makeShape(heads: readonly string[]): Shape {
  const fieldLines: number[] = [];
  const keys: string[] = [];
  heads.forEach((head, i) => {
    const sep = head.endsWith(': ') ? head.length - 2 : head.length - 1;
    const key = head.slice(0, sep).trim().toLowerCase();
    if (key.length === 0) return;
    fieldLines.push(i);
    keys.push(key);
  });
  const plain = new Set(keys).size === keys.length && !keys.includes('__proto__');
  let build: Builder;
  if (plain) {
    build = new Function('v', `return {${keys.map((k, i) => `${JSON.stringify(k)}: v[${i}]`).join(', ')}};`) as Builder;
  } else {
    build = (values) => {
      const msg: Record<string, string | string[]> = {};
      keys.forEach((key, i) => {
        const prev = msg[key];
        if (typeof prev === 'string') msg[key] = [prev, values[i]!];
        else if (Array.isArray(prev)) prev.push(values[i]!);
        else msg[key] = values[i]!;
      });
      return msg;
    };
  }
  return { heads, fieldLines, build };
}

function rewrite(value: string, k: number, periodSec: number): string {
  return value.replace(
    TOKENS,
    (
      _m,
      epoch?: string,
      seq?: string,
      y?: string,
      mo?: string,
      d?: string,
      t?: string,
      h?: string,
      mi?: string,
      s?: string,
      head?: string,
      last2?: string,
    ) => {
      if (epoch !== undefined) return `${Number(epoch) + k * periodSec}.${Number(seq) + k * SEQ_STRIDE}`;
      if (y !== undefined) {
        const at = new Date(Date.UTC(+y, +mo! - 1, +d!, +h!, +mi!, +s!) + k * periodSec * 1000);
        return `${at.toISOString().slice(0, 10)}${t}${at.toISOString().slice(11, 19)}`;
      }
      return head! + String((Number(last2) + NUMBER_STEP * k) % 100).padStart(2, '0');
    },
  );
}

/** Whole minutes covering every time in the capture: copies follow each other without overlap. */
function capturePeriod(values: readonly string[]): number {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    for (const m of v.matchAll(TIME)) {
      const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) / 1000;
      if (t < min) min = t;
      if (t > max) max = t;
    }
  }
  if (!Number.isFinite(min)) return 60;
  return (Math.floor((max - min) / 60) + 1) * 60;
}
