// The suppression lists' durable form: one JSON file per tenant in
// <storage>/suppressions/, replaced atomically like the consent store, so a
// crash leaves the old or the new list, never a torn one, and one tenant's
// unreadable file withholds only that tenant's records. Holds tokens, key
// ids, actors and times: never a number. Encrypted at rest: each file is one
// sealed document under the suppression store's key (store-cipher.ts).
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.js';
import { GatewayError } from '../errors.js';
import { isSealed } from '../storage-seal.js';
import type { StoreCipher } from '../store-cipher.js';

export const SUPPRESSION_DIR = 'suppressions';
const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** A keyed token as records carry it: base64url, 80 to 256 bits. */
export const TOKEN = /^[A-Za-z0-9_-]{14,43}$/;
/** Entry ids hold no digits, so the audit log's number check never trips on one. */
export const SUPPRESSION_ID = /^sup_[a-z]{12}$/;

export const SuppressionToken = z
  .object({
    /** The key the token was made with; null when a tenant added a bare token without saying. */
    kid: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .nullable(),
    token: z.string().regex(TOKEN),
  })
  .strict();
export type SuppressionToken = z.infer<typeof SuppressionToken>;

export const SuppressionEntry = z
  .object({
    id: z.string().regex(SUPPRESSION_ID),
    tokens: z.array(SuppressionToken).min(1).max(64),
    /** number: tokens under every live key at the time; token: the one token a tenant gave. */
    via: z.enum(['number', 'token']),
    addedBy: z.string().min(1).max(100),
    addedAt: z.iso.datetime({ offset: false }),
  })
  .strict();
export type SuppressionEntry = z.infer<typeof SuppressionEntry>;

const SuppressionFile = z
  .object({ version: z.literal(1), tenant: z.string().regex(TENANT_ID), entries: z.array(SuppressionEntry) })
  .strict();

export type TenantListLoad =
  | { readonly readable: true; readonly entries: readonly SuppressionEntry[] }
  | { readonly readable: false; readonly problem: string };

export interface SuppressionStore {
  readonly dir: string;
  load(tenant: string): TenantListLoad;
  /** Durable when it resolves. Writes are serialised. */
  save(tenant: string, entries: readonly SuppressionEntry[]): Promise<void>;
  /** Deletes a tenant's list (tenant shred). */
  drop(tenant: string): boolean;
  /** Tenants with a list file. */
  tenants(): string[];
}

export function suppressionDir(stateDir: string): string {
  return join(stateDir, SUPPRESSION_DIR);
}

/** The list file's text: opened under the cipher; plaintext only when there is no cipher (tools, older tests). */
export function decodeSuppressionText(
  text: string,
  cipher: StoreCipher | undefined,
): { ok: true; text: string } | { ok: false; problem: string } {
  const line = text.trimEnd();
  if (cipher === undefined)
    return isSealed(line) ? { ok: false, problem: 'encrypted, and no storage key was given' } : { ok: true, text };
  const r = cipher.open(line);
  return r.ok ? { ok: true, text: r.text } : { ok: false, problem: `the file ${r.problem}` };
}

/** `cipher`: encryption at rest (storeCipherOf(loaded, 'suppression', dir)); the gateway and the CLI always give one. */
export function openSuppressionStore(stateDir: string, cipher?: StoreCipher): SuppressionStore {
  const dir = suppressionDir(stateDir);
  const pathOf = (tenant: string) => {
    if (!TENANT_ID.test(tenant)) throw new GatewayError('GW_SUPPRESSION_STORE', 'not a tenant id');
    return join(dir, `${tenant}.json`);
  };
  let chain: Promise<unknown> = Promise.resolve();
  return {
    dir,
    load(tenant) {
      let text: string;
      try {
        text = readFileSync(pathOf(tenant), 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return { readable: true, entries: [] };
        return { readable: false, problem: `cannot read (${code ?? 'error'})` };
      }
      const opened = decodeSuppressionText(text, cipher);
      if (!opened.ok) return { readable: false, problem: opened.problem };
      let json: unknown;
      try {
        json = JSON.parse(opened.text);
      } catch {
        return { readable: false, problem: 'not valid JSON' };
      }
      const parsed = SuppressionFile.safeParse(json);
      if (!parsed.success) return { readable: false, problem: 'does not match the suppression list schema' };
      if (parsed.data.tenant !== tenant) return { readable: false, problem: "holds another tenant's list" };
      return { readable: true, entries: parsed.data.entries };
    },
    save(tenant, entries) {
      const path = pathOf(tenant);
      const run = chain.then(async () => {
        try {
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          const doc = JSON.stringify({ version: 1, tenant, entries });
          await writeFileAtomic(path, (cipher === undefined ? doc : cipher.seal(doc)) + '\n', dir);
        } catch (err) {
          throw new GatewayError(
            'GW_SUPPRESSION_STORE',
            `suppression list ${path}: write failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
            { cause: err },
          );
        }
      });
      chain = run.catch(() => undefined);
      return run;
    },
    drop(tenant) {
      try {
        unlinkSync(pathOf(tenant));
        return true;
      } catch {
        return false;
      }
    },
    tenants() {
      try {
        return readdirSync(dir).flatMap((n) => {
          const m = /^([a-z0-9][a-z0-9_-]{0,62})\.json$/.exec(n);
          return m === null ? [] : [m[1]!];
        });
      } catch {
        return [];
      }
    },
  };
}
