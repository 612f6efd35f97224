// Shared by the suppression, erase and shred tests: a real capture as AMI
// messages, the subscribers picked from its Master.csv, and a two-tenant
// configuration with a state dir.
import { TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';
import { join } from 'node:path';
import { parseConfig, type LoadedConfig } from '../../src/config/load.js';
import type { CdrRecord } from '../../src/privacy/cdr-record.js';
import { splitCapture } from '../../src/source/capture.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import type { SubjectTokens } from '../../src/subject/tokens.js';
import { readCapture } from '../helpers/ground-truth.js';
import { KEY_ACME, KEY_GLOBEX, TWO_TENANTS } from '../helpers/configs.js';

export const CAPTURE = 'inbound-pstn';
/**
 * Master.csv: acme's caller on three CDRs (07:21:12, and two at 07:21:22),
 * given here in national format to prove normalisation before matching.
 */
export const JANE = '07700 900123';
/** Calls acme once and globex twice: suppressing them in acme must leave globex alone. */
export const SHARED_CALLER = '07700900124';
export const ENV = {
  K_ACME: KEY_ACME,
  K_GLOBEX: KEY_GLOBEX,
  CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX,
  CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX,
};

export function settings(storage: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...TWO_TENANTS,
    storage: { dir: storage },
    ...extra,
  };
}

export function config(storage: string, extra: Record<string, unknown> = {}): LoadedConfig {
  return parseConfig(settings(storage, extra), ENV, join(storage, 'config.json'));
}

/** The capture's AMI messages, as the client would hand them to the pipeline. */
export function captureMessages(name: string = CAPTURE): AmiMessage[] {
  const out: AmiMessage[] = [];
  const parser = createFrameParser({ onMessage: (m) => out.push(m) });
  parser.push(Buffer.from(splitCapture(readCapture(name)).body));
  return out;
}

/** A record the subject appears in (caller or callee, token or fpe, any key). */
export function involves(record: CdrRecord, subject: SubjectTokens): boolean {
  const values = new Set(subject.keys.flatMap((k) => [k.token, ...k.fpe]));
  const holds = (p: CdrRecord['caller']) =>
    p !== undefined && ((p.token !== null && values.has(p.token)) || (p.fpe !== undefined && values.has(p.fpe)));
  return record.tenant === subject.tenant && (holds(record.caller) || holds(record.callee));
}

export { memoryLog as memoryLogger } from '../helpers/memory-log.js';

export async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
