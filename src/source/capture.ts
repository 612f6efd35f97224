// Recorded AMI sessions: reading a capture file (raw or gzipped) and cutting
// off the part that belonged to the recording client's own login.
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { GatewayError } from '../errors.js';
import type { AmiMessage } from './ami-message.js';
import { createFrameParser } from './frame-parser.js';

const gunzipAsync = promisify(gunzip);
const GZIP_MAGIC = [0x1f, 0x8b] as const;
const GREETING_PREFIX = Buffer.from('Asterisk Call Manager/');

export interface CaptureParts {
  /** The `Asterisk Call Manager/x.y.z` line with its line ending; empty when the capture has none. */
  readonly greeting: Buffer;
  /** The recording client's own `Response: Success` / `Authentication accepted`, with its blank line. */
  readonly loginResponse: Buffer | null;
  /** Everything after those, byte for byte (events, responses, the final Goodbye). */
  readonly body: Buffer;
}

/** Reads a `.ami` or `.ami.gz` file; gzip is recognised by its magic bytes. */
export async function readCapture(path: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (err) {
    throw unreadable(path, (err as NodeJS.ErrnoException).code ?? 'read failed', err);
  }
  const gzipped = raw.length >= 2 && raw[0] === GZIP_MAGIC[0] && raw[1] === GZIP_MAGIC[1];
  if (!gzipped) {
    if (path.endsWith('.gz')) throw unreadable(path, 'not gzip data');
    return raw;
  }
  try {
    return await gunzipAsync(raw);
  } catch (err) {
    throw unreadable(path, 'corrupt gzip data', err);
  }
}

/** Separates the greeting and the capture's own login response from the rest. */
export function splitCapture(buf: Buffer): CaptureParts {
  let greetingEnd = 0;
  if (startsWith(buf, GREETING_PREFIX)) {
    const nl = buf.indexOf(0x0a);
    greetingEnd = nl === -1 ? buf.length : nl + 1;
  }
  const greeting = buf.subarray(0, greetingEnd);
  const firstEnd = messageEnd(buf, greetingEnd);
  if (firstEnd !== -1 && isLoginAccepted(buf.subarray(greetingEnd, firstEnd))) {
    return { greeting, loginResponse: buf.subarray(greetingEnd, firstEnd), body: buf.subarray(firstEnd) };
  }
  return { greeting, loginResponse: null, body: buf.subarray(greetingEnd) };
}

/** Offset just past the blank line ending the message that starts at `from`; -1 if none. */
export function messageEnd(buf: Buffer, from: number): number {
  const crlf = buf.indexOf('\r\n\r\n', from);
  const lf = buf.indexOf('\n\n', from);
  if (crlf === -1) return lf === -1 ? -1 : lf + 2;
  if (lf === -1 || crlf + 1 < lf) return crlf + 4;
  return lf + 2;
}

function isLoginAccepted(frame: Buffer): boolean {
  let msg: AmiMessage | undefined;
  const parser = createFrameParser({ onMessage: (m) => (msg = msg ?? m) });
  parser.push(frame);
  parser.end();
  return msg !== undefined && msg['response'] === 'Success' && msg['message'] === 'Authentication accepted';
}

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  return buf.length >= prefix.length && buf.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

function unreadable(path: string, reason: string, cause?: unknown): GatewayError {
  return new GatewayError(
    'GW_CAPTURE_UNREADABLE',
    `capture ${path} is unreadable: ${reason}`,
    cause === undefined ? undefined : { cause },
  );
}
