// Schema problems as an operator reads them: one phrase each, what was
// expected and (for a wrong type) what the file has instead, never the value
// itself (it may be a secret). An unknown key gets the nearest key the schema
// knows at that place ("usename": did you mean "username"?). Config files and
// rules files both report through here.
import type { z } from 'zod';
import { closest } from './suggest.js';

export type Path = readonly (string | number)[];

export interface SettingProblem {
  readonly path: Path;
  /** A whole phrase: `expected ...`, or `unknown key ...`. */
  readonly message: string;
}

export type Validated<T> =
  { readonly ok: true; readonly data: T } | { readonly ok: false; readonly problems: SettingProblem[] };

const TYPE_WORDS: Readonly<Record<string, string>> = {
  number: 'a number',
  int: 'a whole number',
  string: 'text',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping of settings',
  record: 'a mapping',
};

function kindOf(input: unknown): string {
  if (input === null) return 'an empty value';
  if (Array.isArray(input)) return 'a list';
  switch (typeof input) {
    case 'string':
      return 'text';
    case 'number':
      return Number.isInteger(input) ? 'a whole number' : 'a number with a fraction';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping';
    default:
      return typeof input;
  }
}

function quoted(values: readonly unknown[]): string {
  const q = values.map((v) => JSON.stringify(v));
  return q.length <= 1 ? (q[0] ?? 'nothing') : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]}`;
}

type RawIssue = z.core.$ZodRawIssue & { input?: unknown; path?: PropertyKey[] };

/** Zod's default texts ("Invalid input: expected number, received string") as the end of "expected ...". */
function phrase(iss: RawIssue): string | undefined {
  const p = defaultPhrase(iss);
  const missing = iss.input === undefined && (iss.code === 'invalid_value' || iss.code === 'invalid_union');
  return p === undefined || !missing ? p : `${p} (required)`;
}

function defaultPhrase(iss: RawIssue): string | undefined {
  const i = iss as RawIssue & Record<string, unknown>;
  switch (iss.code) {
    case 'invalid_type': {
      const want = TYPE_WORDS[String(i.expected)] ?? `a ${String(i.expected)}`;
      return i.input === undefined ? `${want} (required)` : `${want}, not ${kindOf(i.input)}`;
    }
    case 'too_small': {
      const min = i.minimum as number;
      if (i.origin === 'string') return min <= 1 ? 'text that is not empty' : `text of at least ${min} characters`;
      if (i.origin === 'array' || i.origin === 'set')
        return min <= 1 ? 'at least one entry' : `at least ${min} entries`;
      return i.inclusive === false ? `a number above ${min}` : `a number of at least ${min}`;
    }
    case 'too_big': {
      const max = i.maximum as number;
      if (i.origin === 'string') return `text of at most ${max} characters`;
      if (i.origin === 'array' || i.origin === 'set') return `at most ${max} entries`;
      return i.inclusive === false ? `a number below ${max}` : `a number of at most ${max}`;
    }
    case 'invalid_value':
      return `one of ${quoted(i.values as unknown[])}`;
    case 'invalid_union':
      return Array.isArray(i.options) ? `one of ${quoted(i.options)}` : 'one of the forms this setting takes';
    case 'not_multiple_of':
      return `a multiple of ${String(i.divisor)}`;
    case 'invalid_format':
      return i.format === 'datetime'
        ? 'an ISO-8601 time such as 2026-11-01T00:00:00Z'
        : 'text in the form this setting takes';
    case 'invalid_key': {
      const inner = (i.issues as Array<{ message?: string }> | undefined)?.[0]?.message;
      return `a key of ${inner ?? 'the form this mapping takes'}`;
    }
    default:
      return undefined;
  }
}

/** Parses `data` with `schema`; every problem as one phrase with its path. */
export function validate<S extends z.ZodType>(schema: S, data: unknown): Validated<z.output<S>> {
  // The schema knows which keys an object takes; the issue only says which ones it did not.
  const knownKeys = new Map<string, readonly string[]>();
  const parsed = schema.safeParse(data, {
    error: (iss: RawIssue) => {
      if (iss.code === 'unrecognized_keys') {
        const shape = (iss as { inst?: { _zod?: { def?: { shape?: object } } } }).inst?._zod?.def?.shape;
        knownKeys.set((iss.path ?? []).map(String).join('\u0000'), shape ? Object.keys(shape) : []);
        return 'unknown key';
      }
      return phrase(iss);
    },
  });
  if (parsed.success) return { ok: true, data: parsed.data };
  const problems = parsed.error.issues.flatMap((issue): SettingProblem[] => {
    const path = issue.path as Path;
    if (issue.code !== 'unrecognized_keys') return [{ path, message: `expected ${issue.message}` }];
    const known = knownKeys.get(path.map(String).join('\u0000')) ?? [];
    return issue.keys.map((key) => ({ path: [...path, key], message: unknownKey(key, known) }));
  });
  return { ok: false, problems };
}

export function unknownKey(key: string, known: readonly string[]): string {
  const near = closest(key, known);
  if (near.length > 0) return `unknown key: did you mean ${near.map((k) => JSON.stringify(k)).join(' or ')}?`;
  return known.length > 0 && known.length <= 16 ? `unknown key (this place takes ${known.join(', ')})` : 'unknown key';
}
