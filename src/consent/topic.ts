// Consent shared between gateways over the compacted topic `<prefix>.consent`.
// Every change made here is published; every gateway reads the topic from its
// beginning at each start and follows it, applying what others changed into
// its own registry (which stays the cache and the source while Kafka is away).
//
// Key `<tenant>/<extension key>`: the extension itself only when the tenant's
// extension method is `keep`; otherwise its keyed form (HMAC under the
// tenant's id key, privacy/ids.ts consentKeyOf), which every gateway holding
// the tenant's keys computes alike and maps back through the extensions it
// knows. Value (JSON): recording, version (change time in ms), at (the same
// time, ISO), actor (as the audit log names it: a token id, never a person's
// data), origin (the instance that made the change). A null value
// (tombstone, written by `tenant shred`) removes the key: off.
//
// Conflicts: last writer wins on (version, then origin compared as strings,
// then off before on), so two gateways that both changed an extension end
// with the same answer whatever order they read the changes in. The registry
// never stamps a change at or before the one it replaces (registry.ts), so a
// gateway whose clock runs behind still wins with a later change.
//
// Outbox: what must be published is derived, not queued. Once the topic has
// been read to the end, every stored entry newer than the last record the
// topic holds for its key is published (changes made while Kafka was away,
// or that crashed between the store and Kafka), and so is an entry that won
// against a record read after it (so the compacted topic ends with the
// winner too). Nothing is lost while the local store keeps it.
import { z } from 'zod';
import { defaultEgress } from '../egress/egress.js';
import type { Logger } from '../observability/logger.js';
import { consentKeyOf } from '../privacy/ids.js';
import { compileNumberSet } from '../privacy/number-sets.js';
import { splitChangedBy, type ConsentEntryView, type ConsentRegistry, type RemoteChange } from './registry.js';

/** One message for the topic; a null value is a tombstone. */
export interface ConsentTopicMessage {
  readonly key: string;
  readonly value: string | null;
}

const EXTENSION = /^[0-9]{1,6}$/;
const INSTANCE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const ConsentTopicValue = z
  .object({
    recording: z.boolean(),
    /** The change time in ms: what changes are ordered by. */
    version: z.number().int().min(0),
    at: z.iso.datetime({ offset: false }),
    actor: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9:._-]+$/),
    origin: z.string().regex(INSTANCE),
  })
  .strict()
  .refine((v) => new Date(v.version).toISOString() === v.at, { message: 'at must be the version as ISO time' });
export type ConsentTopicValue = z.infer<typeof ConsentTopicValue>;

/** `<tenant>/<extension or its keyed form>`. */
export function consentTopicKey(tenant: string, form: string): string {
  return `${tenant}/${form}`;
}

export function parseConsentTopicKey(key: string): { tenant: string; form: string } | undefined {
  const cut = key.indexOf('/');
  if (cut <= 0) return undefined;
  return { tenant: key.slice(0, cut), form: key.slice(cut + 1) };
}

export function parseConsentTopicValue(text: string): ConsentTopicValue | undefined {
  try {
    const r = ConsentTopicValue.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export interface Version {
  readonly ms: number;
  readonly origin: string;
  readonly recording: boolean;
}

/**
 * The conflict rule: > 0 when `a` wins over `b`. Later time wins; at the same
 * millisecond the greater origin (string order); the same change twice is 0.
 * Same time and origin but a different answer (two gateways sharing an
 * instance id): off wins, so the pair still ends alike, and safe.
 */
export function compareVersions(a: Version, b: Version): number {
  if (a.ms !== b.ms) return a.ms - b.ms;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  if (a.recording === b.recording) return 0;
  return a.recording ? -1 : 1;
}

const versionKey = (v: Version) => `${v.ms}|${v.origin}|${v.recording ? 1 : 0}`;

/** What the topic needs to know of a tenant here; undefined: the tenant is not shared (unknown, shredded). */
export interface ConsentTopicTenant {
  readonly extensionMethod: 'keep' | 'token' | 'redact';
  /** The tenant's id key; without it a non-keep tenant's consent cannot be shared (withheld, counted). */
  readonly idKey: Buffer | null;
  /** The rules' `match.extensions` (numbers, ranges, patterns): extensions a keyed form may map back to. */
  readonly extensionSets: readonly string[];
}

export type ConsentTopicWithheld = 'no-id-key' | 'egress';
export type ConsentTopicIgnored = 'invalid' | 'unknown-tenant' | 'older';

export interface ConsentTopicStats {
  /** Messages Kafka acknowledged (changes, repairs). */
  readonly published: number;
  /** Remote changes applied to the local registry (each audited once). */
  readonly applied: number;
  /** Records read that changed nothing: this instance's own echoes and changes already applied. */
  readonly duplicates: number;
  readonly ignored: Readonly<Record<ConsentTopicIgnored, number>>;
  readonly withheld: Readonly<Record<ConsentTopicWithheld, number>>;
  /** Keyed extensions read that no known extension maps to: kept, applied once the extension is known. */
  readonly unmapped: number;
  /** Local entries not on the topic yet (Kafka away, or not read to the end yet). */
  readonly outbox: number;
  readonly caughtUp: boolean;
}

export interface ConsentTopicDeps {
  readonly registry: Pick<
    ConsentRegistry,
    'tenants' | 'entries' | 'entry' | 'list' | 'applyRemote' | 'onChange' | 'onSeen' | 'readable'
  >;
  /** This gateway's instance id (audit.instanceId or the host name): the origin of its changes. */
  readonly instance: string;
  readonly tenant: (id: string) => ConsentTopicTenant | undefined;
  /** Publishes messages; resolves once Kafka acknowledged them all. */
  readonly send: (messages: readonly ConsentTopicMessage[]) => Promise<void>;
  readonly log: Pick<Logger, 'info' | 'warn'>;
  /** How long after a failed publish it is tried again (default 2 s). */
  readonly retryMs?: number;
  /** At most this many unmapped keyed extensions are kept (default 10,000; beyond: counted, logged). */
  readonly maxUnmapped?: number;
}

export interface ConsentReplicator {
  /** One record of the topic, in log order (key and value as read; a null value is a tombstone). */
  receive(key: Buffer | string | null, value: Buffer | string | null): void;
  /** After each fetched batch: applies what was received since, in one durable step per tenant. */
  batchDone(): void;
  /** The topic has been read up to the high-water marks taken at the start: the outbox may publish now. */
  caughtUp(): void;
  /** A new read from the beginning starts (a reconnect): publishing waits until it is caught up again. */
  restarted(): void;
  /** Resolves once everything received is applied and everything due has been tried. */
  idle(): Promise<void>;
  stats(): ConsentTopicStats;
  /** Keys this gateway would publish for a tenant's stored entries (shred tombstones them). */
  keysOf(tenant: string): string[];
  stop(): Promise<void>;
}

const TOMBSTONE = 'tombstone' as const;
type OnTopic = Version | typeof TOMBSTONE;

/** Extensions enumerated from one tenant's rules at most: a pattern such as `_X.` matches far too many. */
const MAX_ENUMERATED = 200_000;

export function createConsentReplicator(deps: ConsentTopicDeps): ConsentReplicator {
  const { registry, instance, log } = deps;
  const retryMs = deps.retryMs ?? 2000;
  const maxUnmapped = deps.maxUnmapped ?? 10_000;
  const ignored: Record<ConsentTopicIgnored, number> = { invalid: 0, 'unknown-tenant': 0, older: 0 };
  const withheld: Record<ConsentTopicWithheld, number> = { 'no-id-key': 0, egress: 0 };
  let published = 0;
  let applied = 0;
  let duplicates = 0;
  let outbox = 0;
  let caught = false;
  let stopped = false;
  /** The last record read per key, in log order. */
  const onTopic = new Map<string, OnTopic>();
  /** Versions Kafka acknowledged per key whose echo was not read yet: not sent again meanwhile. */
  const sent = new Map<string, string>();
  /** Versions the egress refused per key: not tried again. */
  const refused = new Map<string, string>();
  /** Keyed extension -> extension, per tenant (built on first need, then kept up to date). */
  const forms = new Map<string, Map<string, string>>();
  /** Extension -> key, per tenant. */
  const keys = new Map<string, Map<string, string>>();
  /** Records for keyed extensions no known extension maps to. */
  const unmapped = new Map<string, { tenant: string; value: ConsentTopicValue | null }>();
  let received: Array<{ tenant: string; extension: string; value: ConsentTopicValue | null }> = [];
  let work: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const warned = new Set<string>();
  const noKeyCounted = new Set<string>();
  const warnOnce = (what: string, fields: Record<string, unknown>, msg: string) => {
    if (warned.has(what)) return;
    warned.add(what);
    log.warn({ component: 'consent-topic', ...fields }, msg);
  };

  const enqueue = (fn: () => Promise<void>): Promise<void> => {
    const p = work.then(fn);
    work = p.catch((err: unknown) => {
      log.warn(
        { component: 'consent-topic', code: (err as { code?: string }).code ?? 'error' },
        'consent topic step failed',
      );
    });
    return work;
  };

  /** The key an extension has on the topic, or why it has none. */
  const keyOf = (tenant: string, extension: string): string | 'no-id-key' => {
    const cfg = deps.tenant(tenant);
    if (cfg === undefined) return 'no-id-key';
    if (cfg.extensionMethod === 'keep') return consentTopicKey(tenant, extension);
    if (cfg.idKey === null) return 'no-id-key';
    let m = keys.get(tenant);
    if (m === undefined) keys.set(tenant, (m = new Map()));
    let k = m.get(extension);
    if (k === undefined) {
      const form = consentKeyOf(cfg.idKey, tenant, extension);
      k = consentTopicKey(tenant, form);
      m.set(extension, k);
      forms.get(tenant)?.set(form, extension);
    }
    return k;
  };

  /** Every extension this gateway knows of the tenant: stored, configured, seen, and what its rules name. */
  const formsOf = (tenant: string, cfg: ConsentTopicTenant): Map<string, string> => {
    let m = forms.get(tenant);
    if (m !== undefined) return m;
    forms.set(tenant, (m = new Map()));
    // Keys computed before the map existed are added here; keyOf adds every later one.
    for (const [ext, k] of keys.get(tenant) ?? []) m.set(parseConsentTopicKey(k)!.form, ext);
    for (const e of registry.list(tenant)) keyOf(tenant, e.extension);
    const matchers = cfg.extensionSets.map(compileNumberSet);
    if (matchers.length > 0) {
      let n = 0;
      outer: for (let len = 1; len <= 6; len++)
        for (let i = 0; i < 10 ** len; i++) {
          const ext = String(i).padStart(len, '0');
          if (!matchers.some((f) => f(ext))) continue;
          keyOf(tenant, ext);
          if (++n >= MAX_ENUMERATED) break outer;
        }
    }
    return m;
  };

  const versionOf = (e: ConsentEntryView): Version | undefined => {
    if (e.changedAt === null || e.changedBy === null) return undefined;
    return {
      ms: Date.parse(e.changedAt),
      origin: splitChangedBy(e.changedBy).origin ?? instance,
      recording: e.recording,
    };
  };

  const valueOf = (e: ConsentEntryView, v: Version): ConsentTopicValue => ({
    recording: e.recording,
    version: v.ms,
    at: new Date(v.ms).toISOString(),
    actor: splitChangedBy(e.changedBy ?? 'gateway').actor,
    origin: v.origin,
  });

  const receive = (rawKey: Buffer | string | null, rawValue: Buffer | string | null): void => {
    const key = rawKey === null ? undefined : parseConsentTopicKey(rawKey.toString());
    if (key === undefined) {
      ignored.invalid++;
      return;
    }
    const value = rawValue === null ? null : parseConsentTopicValue(rawValue.toString());
    if (value === undefined) {
      ignored.invalid++;
      return;
    }
    const fullKey = consentTopicKey(key.tenant, key.form);
    if (value === null) onTopic.set(fullKey, TOMBSTONE);
    else {
      const v: Version = { ms: value.version, origin: value.origin, recording: value.recording };
      onTopic.set(fullKey, v);
      // Our own change is on the topic: from now on what the topic holds for the key decides.
      if (value.origin === instance && sent.get(fullKey) === versionKey(v)) sent.delete(fullKey);
    }
    const cfg = deps.tenant(key.tenant);
    if (cfg === undefined || !registry.tenants().includes(key.tenant)) {
      ignored['unknown-tenant']++;
      return;
    }
    let extension: string | undefined;
    if (cfg.extensionMethod === 'keep') extension = EXTENSION.test(key.form) ? key.form : undefined;
    else if (cfg.idKey !== null) extension = formsOf(key.tenant, cfg).get(key.form);
    if (extension === undefined) {
      if (cfg.extensionMethod === 'keep' || cfg.idKey === null) {
        ignored.invalid++;
        return;
      }
      if (unmapped.size >= maxUnmapped && !unmapped.has(fullKey)) {
        warnOnce(
          'unmapped-full',
          { tenant: key.tenant, kept: maxUnmapped },
          'consent topic: too many keyed extensions this gateway does not know; further ones are ignored until it restarts',
        );
        return;
      }
      unmapped.set(fullKey, { tenant: key.tenant, value });
      return;
    }
    unmapped.delete(fullKey);
    received.push({ tenant: key.tenant, extension, value });
  };

  /** Applies what was received, one durable step per tenant; then publishes what is due. */
  const applyReceived = (): Promise<void> => {
    if (received.length === 0) return flushSoon();
    const batch = received;
    received = [];
    const byTenant = new Map<string, RemoteChange[]>();
    for (const r of batch) {
      let list = byTenant.get(r.tenant);
      if (list === undefined) byTenant.set(r.tenant, (list = []));
      if (r.value === null) {
        // A tombstone (tenant shred): the extension is off. It carries no version: it wins over what is stored.
        list.push({ extension: r.extension, recording: false, actor: 'gateway', origin: TOMBSTONE, changedAt: '' });
      } else
        list.push({
          extension: r.extension,
          recording: r.value.recording,
          actor: r.value.actor,
          origin: r.value.origin,
          changedAt: r.value.at,
        });
    }
    return enqueue(async () => {
      for (const [tenant, list] of byTenant) {
        const changes = list.map((c) => (c.origin === TOMBSTONE ? { ...c, changedAt: new Date().toISOString() } : c));
        const done = await registry.applyRemote(tenant, changes, (c, current) => {
          if (c.origin === TOMBSTONE) return current?.recording === true;
          const cur = current === undefined ? undefined : versionOf(current);
          const incoming: Version = { ms: Date.parse(c.changedAt), origin: c.origin, recording: c.recording };
          const cmp = cur === undefined ? 1 : compareVersions(incoming, cur);
          if (cmp > 0) return true;
          if (cmp === 0) duplicates++;
          else ignored.older++;
          return false;
        });
        applied += done.length;
      }
    }).then(flushSoon);
  };

  /** Local entries the topic does not hold yet (or holds an older answer for). */
  const due = (): ConsentTopicMessage[] => {
    const out: ConsentTopicMessage[] = [];
    if (!registry.readable) return out;
    for (const tenant of registry.tenants()) {
      if (deps.tenant(tenant) === undefined) continue;
      for (const e of registry.entries(tenant)) {
        const v = versionOf(e);
        if (v === undefined) continue;
        const key = keyOf(tenant, e.extension);
        if (key === 'no-id-key') {
          const once = `${tenant}/${e.extension}|${e.changedAt}`;
          if (!noKeyCounted.has(once)) {
            noKeyCounted.add(once);
            withheld['no-id-key']++;
          }
          warnOnce(
            `no-id-key:${tenant}`,
            { tenant, cause: 'no-id-key' },
            'consent of this tenant is not shared with other gateways: its id key is missing',
          );
          continue;
        }
        const last = onTopic.get(key);
        // Off is what no record means: an entry that is off needs no record where there is none (or a tombstone).
        if (last === undefined || last === TOMBSTONE) {
          if (!e.recording) continue;
        } else if (compareVersions(v, last) <= 0) continue;
        const vk = versionKey(v);
        if (sent.get(key) === vk || refused.get(key) === vk) continue;
        out.push({ key, value: JSON.stringify(valueOf(e, v)) });
      }
    }
    return out;
  };

  let flushing: Promise<void> | undefined;
  const flush = (): Promise<void> => {
    if (!caught || stopped) return Promise.resolve();
    if (flushing !== undefined) return flushing.then(flush);
    const messages: ConsentTopicMessage[] = [];
    for (const m of due()) {
      // Keyed forms, flags, token ids and instance ids only; checked at the door like every output.
      if (!defaultEgress().pass('kafka', m.key) || !defaultEgress().pass('kafka', m.value ?? '', { object: m })) {
        withheld.egress++;
        const v = parseConsentTopicValue(m.value ?? '');
        if (v !== undefined)
          refused.set(m.key, versionKey({ ms: v.version, origin: v.origin, recording: v.recording }));
        continue;
      }
      messages.push(m);
    }
    outbox = messages.length;
    if (messages.length === 0) return Promise.resolve();
    flushing = deps
      .send(messages)
      .then(() => {
        published += messages.length;
        outbox = 0;
        for (const m of messages) {
          const v = parseConsentTopicValue(m.value ?? '')!;
          sent.set(m.key, versionKey({ ms: v.version, origin: v.origin, recording: v.recording }));
        }
      })
      .catch((err: unknown) => {
        warnOnce(
          'send-failed',
          { code: (err as { code?: string }).code ?? 'error', pending: messages.length },
          'consent changes not published to the consent topic yet: kept in the local store and published when Kafka takes them',
        );
        retrySoon();
      })
      .finally(() => {
        flushing = undefined;
      });
    return flushing;
  };
  const flushSoon = (): Promise<void> => flush();
  const retrySoon = () => {
    if (timer !== undefined || stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      warned.delete('send-failed');
      void flush();
    }, retryMs);
    timer.unref();
  };

  registry.onChange((c) => {
    if (c.origin !== undefined || stopped) return;
    // A local change: a new extension may now map a keyed one read before.
    const k = keyOf(c.tenant, c.extension);
    if (typeof k === 'string' && unmapped.has(k)) retryUnmapped(c.tenant);
    void enqueue(flush);
  });
  const retryUnmapped = (tenant: string) => {
    for (const [key, u] of [...unmapped]) {
      if (u.tenant !== tenant) continue;
      const form = parseConsentTopicKey(key)!.form;
      const ext = forms.get(tenant)?.get(form);
      if (ext === undefined) continue;
      unmapped.delete(key);
      received.push({ tenant, extension: ext, value: u.value });
    }
    void applyReceived();
  };
  registry.onSeen((tenant, extension) => {
    if (unmapped.size === 0 || !forms.has(tenant)) return;
    keyOf(tenant, extension);
    retryUnmapped(tenant);
  });

  return {
    receive,
    batchDone: () => void applyReceived(),
    caughtUp() {
      if (caught) return;
      caught = true;
      log.info(
        { component: 'consent-topic', applied, unmapped: unmapped.size },
        "consent topic read to the end: this gateway has every other gateway's consent; its own changes are published from here on",
      );
      void enqueue(flush);
    },
    restarted() {
      caught = false;
    },
    async idle() {
      let seen: Promise<void>;
      do {
        if (received.length > 0) void applyReceived();
        seen = work;
        await seen;
        await flushing;
      } while (seen !== work || received.length > 0);
    },
    stats: () => ({
      published,
      applied,
      duplicates,
      ignored: { ...ignored },
      withheld: { ...withheld },
      unmapped: unmapped.size,
      outbox: caught ? outbox : due().length,
      caughtUp: caught,
    }),
    keysOf(tenant) {
      const out: string[] = [];
      for (const e of registry.entries(tenant)) {
        const k = keyOf(tenant, e.extension);
        if (k !== 'no-id-key') out.push(k);
      }
      return out;
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await work;
      await flushing;
    },
  };
}
