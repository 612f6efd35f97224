// The consent registry's durable form: one JSON file replaced atomically
// (write a temp file, fsync it, rename over the old one, fsync the directory),
// so a crash at any instant leaves either the old or the new file, never a
// torn one. Holds tenant ids, extensions, flags, actors and times: no numbers.
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.js';
import { GatewayError } from '../errors.js';

export const ConsentEntry = z
  .object({
    recording: z.boolean(),
    changedBy: z.string().min(1).max(100),
    changedAt: z.iso.datetime({ offset: false }),
  })
  .strict();
export type StoredConsent = z.infer<typeof ConsentEntry>;

/** The file format (consent.json): also what `callveil replay --consent FILE` reads. */
export const StoreFile = z
  .object({
    version: z.literal(1),
    tenants: z.record(z.string(), z.record(z.string().regex(/^[0-9]{1,6}$/), ConsentEntry)),
  })
  .strict();
export type ConsentData = z.infer<typeof StoreFile>['tenants'];

export type LoadResult =
  { readonly readable: true; readonly data: ConsentData } | { readonly readable: false; readonly problem: string };

export interface ConsentStore {
  readonly path: string;
  load(): LoadResult;
  /** Durable when it resolves. Writes are serialised. */
  save(data: ConsentData): Promise<void>;
}

export const CONSENT_FILE = 'consent.json';

export function openConsentStore(dir: string): ConsentStore {
  const path = join(dir, CONSENT_FILE);
  let chain: Promise<unknown> = Promise.resolve();
  return {
    path,
    load() {
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        // Temp files are what a crash mid-write leaves behind; the real file is intact.
        for (const f of readdirSync(dir))
          if (f.startsWith(`${CONSENT_FILE}.`) && f.endsWith('.tmp')) unlinkSync(join(dir, f));
      } catch (err) {
        return {
          readable: false,
          problem: `storage directory not usable (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        };
      }
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { readable: true, data: {} };
        return { readable: false, problem: `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return { readable: false, problem: 'not valid JSON' };
      }
      const parsed = StoreFile.safeParse(json);
      return parsed.success
        ? { readable: true, data: parsed.data.tenants }
        : { readable: false, problem: 'does not match the consent store schema' };
    },
    save(data) {
      const run = chain.then(() => writeAtomic(dir, path, JSON.stringify({ version: 1, tenants: data }) + '\n'));
      chain = run.catch(() => undefined);
      return run;
    },
  };
}

async function writeAtomic(dir: string, path: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(path, text, dir);
  } catch (err) {
    throw new GatewayError(
      'GW_CONSENT_STORE',
      `consent store ${path}: write failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err },
    );
  }
}
