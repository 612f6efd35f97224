// Runs a capture's bytes through the call model alone (no AMI socket, no
// privacy): the raw legs and calls it builds, for comparison with the
// expected tables. Raw values stay in the test process.
import { createCallModel, type CallModelRules } from '../../src/assemble/call-model.js';
import type { RawCall, RawCallParty, RawCdr } from '../../src/assemble/raw-cdr.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import type { Party } from './expected-tables.js';

export interface ModelRun {
  readonly legs: RawCdr[];
  readonly calls: RawCall[];
  readonly messages: number;
}

export function messagesOf(bytes: Buffer): AmiMessage[] {
  const out: AmiMessage[] = [];
  const parser = createFrameParser({ onMessage: (m) => out.push(m) });
  parser.push(bytes);
  return out;
}

export function runModel(
  bytes: Buffer,
  rules: CallModelRules | { readonly privacy: Pick<LoadedConfig['privacy'], 'callModel'> },
): ModelRun {
  const r = 'privacy' in rules ? rules.privacy.callModel : rules;
  const legs: RawCdr[] = [];
  const calls: RawCall[] = [];
  const model = createCallModel({ rules: () => r, timeZone: 'UTC' });
  model.onLeg((l) => legs.push(l));
  model.onCall((c) => calls.push(c));
  const messages = messagesOf(bytes);
  for (const m of messages) model.handle(m);
  model.flush();
  return { legs, calls, messages: messages.length };
}

/** A call model party in the expected tables' label form (expected-tables.ts partyLabel). */
export function modelPartyLabel(p: RawCallParty | null): string {
  if (p === null) return 'none';
  switch (p.kind) {
    case 'extension':
      return `ext:${p.number}`;
    case 'external':
      return `number:${p.number}`;
    case 'queue':
      return `queue:${p.name}`;
    case 'application':
      return `app:${p.app}`;
    case 'unknown':
      return `unknown:${p.number}`;
  }
}

/** The expected label, without the application's exten (the model does not publish it). */
export function expectedPartyLabel(p: Party | null): string {
  if (p === null) return 'none';
  switch (p.kind) {
    case 'extension':
      return `ext:${p.extension}`;
    case 'external':
      return `number:${p.number}`;
    case 'queue':
      return `queue:${p.queue}`;
    case 'application':
      return `app:${p.app}`;
    case 'unknown':
      return `unknown:${p.exten}`;
  }
}
