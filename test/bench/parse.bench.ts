// AMI bytes -> frames: the parsers a user could pick, fed the load capture in
// 64 KiB slices as a socket delivers it. Baseline: a bare indexOf('\r\n\r\n')
// splitter (frames found, nothing built), the floor for any parser. Ours
// twice: with the gateway's decode plan (what the gateway runs) and whole.
import { once, EventEmitter } from 'node:events';
import net from 'node:net';
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { GATEWAY_DECODE_PLAN } from '../../src/source/decode-plan.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import {
  argNumber,
  chunked,
  loadCapture,
  median,
  now,
  perSec,
  profiled,
  progress,
  runIfMain,
  yieldToLoop,
  type BenchResult,
  type Row,
} from './common.js';

const require = createRequire(import.meta.url);
const CRLF2 = Buffer.from('\r\n\r\n');

interface Feeder {
  push(chunk: Buffer): void | Promise<void>;
  /** Resolves when everything pushed has been parsed and delivered. */
  end(): Promise<void>;
}

interface Parser {
  readonly id: string;
  readonly label: string;
  /** A fresh parser for one pass; onEvent once per AMI event delivered to the user. */
  open(onEvent: () => void): Feeder;
}

const floor: Parser = {
  id: 'floor',
  label: "baseline: Buffer.indexOf('\\r\\n\\r\\n') splitter (frames, no fields)",
  open(onEvent) {
    let carry: Buffer | undefined;
    return {
      push(chunk) {
        const buf = carry === undefined ? chunk : Buffer.concat([carry, chunk]);
        let pos = 0;
        for (;;) {
          const end = buf.indexOf(CRLF2, pos);
          if (end === -1) break;
          onEvent();
          pos = end + 4;
        }
        carry = pos < buf.length ? buf.subarray(pos) : undefined;
      },
      end: async () => undefined,
    };
  },
};

const frameParser: Parser = {
  id: 'frameParser',
  label: 'src/source/frame-parser.ts, gateway decode plan (callveil)',
  open(onEvent) {
    const parser = createFrameParser({
      decodePlan: GATEWAY_DECODE_PLAN,
      onMessage: (m) => void (m['event'] !== undefined && onEvent()),
    });
    return {
      push: (chunk) => parser.push(chunk),
      end: async () => parser.end(),
    };
  },
};

const frameParserWhole: Parser = {
  id: 'frameParserWhole',
  label: 'src/source/frame-parser.ts, every header (callveil)',
  open(onEvent) {
    const parser = createFrameParser({ onMessage: (m) => void (m['event'] !== undefined && onEvent()) });
    return {
      push: (chunk) => parser.push(chunk),
      end: async () => parser.end(),
    };
  },
};

// asterisk-manager reads from the socket it creates with net.createConnection;
// it gets a socket-like emitter instead, fed strings as setEncoding('utf-8') would.
class FakeSocket extends EventEmitter {
  readyState = 'open';
  setKeepAlive(): void {}
  setNoDelay(): void {}
  setEncoding(): void {}
  write(): boolean {
    return true;
  }
  end(): void {}
}

const asteriskManager: Parser = {
  id: 'asteriskManager',
  label: 'asterisk-manager 0.2 (lib/ami.js reader)',
  open(onEvent) {
    const Manager = require('asterisk-manager') as (
      port: number,
      host: string,
      user?: string,
      secret?: string,
      events?: boolean,
    ) => EventEmitter;
    const socket = new FakeSocket();
    const real = net.createConnection;
    (net as { createConnection: unknown }).createConnection = () => socket;
    let manager: EventEmitter;
    try {
      manager = Manager(5038, 'bench.invalid', undefined, undefined, true);
    } finally {
      (net as { createConnection: unknown }).createConnection = real;
    }
    manager.on('managerevent', onEvent);
    const decoder = new StringDecoder('utf8');
    return {
      push(chunk) {
        socket.emit('data', decoder.write(chunk));
        // Its events are emitted on process.nextTick: let them out, as between two socket reads.
        return yieldToLoop();
      },
      end: () => yieldToLoop(),
    };
  },
};

const yana: Parser = {
  id: 'yana',
  label: 'yana 0.3 (LineSocket + message buffering)',
  open(onEvent) {
    const AMI = require('yana') as new (
      opts: object,
    ) => EventEmitter & { socket: unknown; _setupMessageBuffering(): void };
    const LineSocket = require('yana/line-socket') as new () => EventEmitter;
    const ami = new AMI({});
    const socket = new LineSocket();
    ami.socket = socket;
    // What yana does once the greeting line was read; the rest of its parser is its own 'line' handler.
    ami._setupMessageBuffering();
    ami.on('event', onEvent);
    return {
      push: (chunk) => void socket.emit('data', chunk),
      end: async () => undefined,
    };
  },
};

const asteriskAmiClient: Parser = {
  id: 'asteriskAmiClient',
  label: 'asterisk-ami-client 1.1 (AmiConnection + AmiEventsStream)',
  open(onEvent) {
    const clientRequire = createRequire(require.resolve('asterisk-ami-client'));
    const AmiConnection = clientRequire('asterisk-ami-connector/lib/AmiConnection.js') as new (
      socket: PassThrough,
    ) => EventEmitter & { _amiDataStream: EventEmitter };
    const socket = new PassThrough();
    const conn = new AmiConnection(socket);
    conn.on('event', onEvent);
    conn.on('error', () => undefined);
    return {
      push(chunk) {
        if (!socket.write(chunk)) return once(socket, 'drain').then(() => undefined);
      },
      async end() {
        const finished = once(conn._amiDataStream, 'finish');
        socket.end();
        await finished;
      },
    };
  },
};

export const PARSERS: readonly Parser[] = [
  floor,
  frameParser,
  frameParserWhole,
  asteriskManager,
  yana,
  asteriskAmiClient,
];

interface Pass {
  readonly events: number;
  readonly bytes: number;
  readonly ms: number;
  readonly complete: boolean;
}

async function pass(parser: Parser, chunks: readonly Buffer[], capMs: number): Promise<Pass> {
  let events = 0;
  let bytes = 0;
  const feeder = parser.open(() => void events++);
  const t0 = now();
  let complete = true;
  for (const chunk of chunks) {
    const r = feeder.push(chunk);
    if (r !== undefined) await r;
    bytes += chunk.length;
    if (now() - t0 > capMs) {
      complete = false;
      break;
    }
  }
  await feeder.end();
  return { events, bytes, ms: now() - t0, complete };
}

export async function parseBench(): Promise<BenchResult> {
  const minMs = argNumber('parse-min-ms', 2000);
  const capMs = argNumber('parse-cap-ms', 12000);
  const maxPasses = 100;
  const capture = await loadCapture();
  const chunks = chunked(capture.raw);
  const results: Record<
    string,
    {
      eventsPerSec: number;
      mbPerSec: number;
      passes: number;
      eventsPerPass: number;
      complete: boolean;
      min: number;
      max: number;
    }
  > = {};
  for (const parser of PARSERS) {
    await pass(parser, chunks, Math.min(capMs, 2000)); // warm-up
    const passes = await profiled('parse', parser.id, async () => {
      const done: Pass[] = [];
      let spent = 0;
      while (done.length < maxPasses && (done.length === 0 || spent < minMs)) {
        const p = await pass(parser, chunks, capMs);
        done.push(p);
        spent += p.ms;
        if (!p.complete) break;
      }
      return done;
    });
    const spent = passes.reduce((ms, p) => ms + p.ms, 0);
    const rates = passes.map((p) => perSec(p.events, p.ms));
    const events = passes.reduce((n, p) => n + p.events, 0);
    const bytes = passes.reduce((n, p) => n + p.bytes, 0);
    results[parser.id] = {
      eventsPerSec: median(rates),
      mbPerSec: perSec(bytes, spent) / 1e6,
      passes: passes.length,
      eventsPerPass: passes[0]!.events,
      complete: passes.every((p) => p.complete),
      min: Math.min(...rates),
      max: Math.max(...rates),
    };
    progress(
      'parse',
      `${parser.id}: ${Math.round(results[parser.id]!.eventsPerSec)} events/s over ${passes.length} pass(es)${passes[0]!.complete ? '' : ' (time-capped, partial pass)'}; ${events} events`,
    );
  }

  const floorRate = results['floor']!.eventsPerSec;
  const amRate = results['asteriskManager']!.eventsPerSec;
  const rows: Row[] = PARSERS.map((p) => {
    const r = results[p.id]!;
    const spread = r.passes > 1 ? `, passes ${r.passes} (${fmt(r.min)}-${fmt(r.max)}/s)` : `, ${r.passes} pass`;
    const partial = r.complete
      ? `${r.eventsPerPass} events/pass`
      : `time-capped at ${capMs / 1000} s: ${r.eventsPerPass} events parsed`;
    return {
      label: `parse: ${p.label}`,
      value: r.eventsPerSec,
      unit: 'events/s',
      ...(p.id === 'floor' ? {} : { baseline: 'indexOf floor', ratio: r.eventsPerSec / floorRate }),
      note: `${r.mbPerSec.toFixed(1)} MB/s, ${p.id === 'floor' ? 'frames' : partial}${spread}${p.id === 'floor' || p.id === 'asteriskManager' ? '' : `; ${(r.eventsPerSec / amRate).toFixed(2)}x asterisk-manager`}`,
    };
  });
  return {
    bench: 'parse',
    rows,
    json: {
      parseEventsPerSec: results['frameParser']!.eventsPerSec,
      parseFloorEventsPerSec: floorRate,
      parseRatioToFloor: results['frameParser']!.eventsPerSec / floorRate,
      parseWholeEventsPerSec: results['frameParserWhole']!.eventsPerSec,
      parseWholeRatioToFloor: results['frameParserWhole']!.eventsPerSec / floorRate,
      parsePlannedOverWhole: results['frameParser']!.eventsPerSec / results['frameParserWhole']!.eventsPerSec,
      parsers: Object.fromEntries(
        Object.entries(results).map(([id, r]) => [
          id,
          { ...r, ratioToFloor: r.eventsPerSec / floorRate, ratioToAsteriskManager: r.eventsPerSec / amRate },
        ]),
      ),
      captureBytes: capture.raw.length,
      chunkBytes: chunks[0]!.length,
    },
  };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

runIfMain(import.meta.url, parseBench);
