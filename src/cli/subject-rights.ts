// `callveil subject suppress|unsuppress|suppressions|erase` and `callveil
// tenant shred`: a data-protection officer's commands for restriction,
// objection, erasure and offboarding. A subscriber's number given here is
// used in memory only: output, errors and audit entries carry tokens and ids.
// Commands that change state take the state dir's lock (subject/state-lock):
// they run while the gateway is stopped; while it runs, suppressions go
// through its tenant API instead.
import { auditKeyOf } from '../audit/audit-key.js';
import { storeCipherOf, storeCiphersOf } from '../store-cipher.js';
import { assertNoRawNumber, openAuditLog, type AuditLog } from '../audit/audit-log.js';
import { kafkaSasl, loadConfigFile, type LoadedConfig } from '../config/load.js';
import { ensureStorageDir } from '../config/storage-dir.js';
import { GatewayError } from '../errors.js';
import { amiTls, auditLogPath, spoolDir, spoolKeysFor } from '../main.js';
import { publishOnce } from '../sink/kafka.js';
import { gatewayTopicsOf } from '../sink/topics.js';
import { purgeSpoolDir } from '../sink/spool.js';
import { sealedLineMatcher } from '../sink/spool-seal.js';
import { eraseSubject } from '../subject/erase.js';
import { executeShred, planShred } from '../subject/shred.js';
import { consentShredLines, shredAstdb, shredConsentTopic } from '../subject/shred-consent.js';
import { readShredTombstone } from '../subject/shred-tombstone.js';
import { acquireStateLock } from '../subject/state-lock.js';
import { openSuppressionList, suppressionTokensOf, viewOf, type SuppressionList } from '../subject/suppression.js';
import { openSuppressionStore, SUPPRESSION_ID, TOKEN } from '../subject/suppression-store.js';
import { subjectPolicy, subjectTokens } from '../subject/tokens.js';
import { guardedOut } from '../egress/cli-output.js';
import { safeUser } from './rules.js';
import { runInProcess, type CliIo, type Env } from './cli-command.js';
import { registerSubject } from './commands/subject.js';
import { registerTenant } from './commands/tenant.js';

type Out = (text: string) => void;

export interface TenantOptions {
  readonly config: string;
  readonly tenant: string;
}

export interface SuppressOptions extends TenantOptions {
  readonly token?: string;
  readonly kid?: string;
}

export interface UnsuppressOptions extends TenantOptions {
  readonly id?: string;
  readonly token?: string;
}

export interface EraseOptions extends TenantOptions {
  readonly reason?: string;
}

export interface ShredOptions extends TenantOptions {
  readonly confirmDestroyKeys?: string;
  readonly reason?: string;
}

/** Checked before anything changes: an audit entry that would be refused must not fail a half-done command. */
function checkedReason(reason: string | undefined): string | undefined {
  if (reason === undefined) return undefined;
  if (reason.length > 200) throw new GatewayError('GW_USAGE', '--reason is limited to 200 characters');
  try {
    assertNoRawNumber('reason', reason);
  } catch {
    throw new GatewayError(
      'GW_USAGE',
      '--reason looks like it holds a phone number: give a ticket reference without long digit runs',
    );
  }
  return reason;
}

/** Runs `fn` owning the state dir, with the audit log open; the lock is released whatever happens. */
async function owningState<T>(loaded: LoadedConfig, command: string, fn: (audit: AuditLog) => Promise<T>): Promise<T> {
  const dir = loaded.config.storage.dir;
  const key = auditKeyOf(loaded);
  ensureStorageDir(dir);
  const lock = acquireStateLock(dir, { kind: 'cli', command });
  try {
    const path = auditLogPath(loaded.config);
    const audit = openAuditLog(path, { key, cipher: storeCipherOf(loaded, 'audit', path) });
    try {
      return await fn(audit);
    } finally {
      audit.close();
    }
  } finally {
    lock.release();
  }
}

const actor = () => `cli:${safeUser()}`;
const modeWord = (mode: 'withhold' | 'redact' | undefined) =>
  mode === 'redact' ? 'published with them redacted' : 'withheld';

function listOf(loaded: LoadedConfig, audit: AuditLog): SuppressionList {
  const dir = loaded.config.storage.dir;
  return openSuppressionList(dir, audit, storeCiphersOf(loaded, dir).suppression);
}

export async function suppress(o: SuppressOptions, number: string | undefined, env: Env, rawOut: Out): Promise<number> {
  const out = guardedOut(rawOut, [number]);
  const loaded = loadConfigFile(o.config, env);
  if ((number !== undefined) === (o.token !== undefined))
    throw new GatewayError('GW_USAGE', 'subject suppress needs either one number or --token TOKEN [--kid KID]');
  if (o.token !== undefined && !TOKEN.test(o.token))
    throw new GatewayError('GW_USAGE', '--token must be a token as records carry it (base64url, 14-43 characters)');
  const policy = subjectPolicy(loaded, o.tenant);
  const tokens =
    o.token !== undefined ? [{ kid: o.kid ?? null, token: o.token }] : suppressionTokensOf(policy, number!);
  const c = await owningState(loaded, 'subject suppress', (audit) =>
    listOf(loaded, audit).add(policy.id, tokens, o.token !== undefined ? 'token' : 'number', actor()),
  );
  const kids = c.entry.tokens.map((t) => t.kid ?? '(unknown key)').join(', ');
  out(
    `${c.created ? 'suppressed' : 'already suppressed'} in tenant ${policy.id}: ${c.entry.id} (tokens under ${kids}); their records are ${modeWord(policy.suppression?.mode)} from the gateway's next start\n`,
  );
  return 0;
}

export async function unsuppress(
  o: UnsuppressOptions,
  number: string | undefined,
  env: Env,
  rawOut: Out,
): Promise<number> {
  const out = guardedOut(rawOut, [number]);
  const loaded = loadConfigFile(o.config, env);
  const given = [number !== undefined, o.id !== undefined, o.token !== undefined].filter(Boolean).length;
  if (given !== 1)
    throw new GatewayError('GW_USAGE', 'subject unsuppress needs one of: a number, --id ID, --token TOKEN');
  if (o.id !== undefined && !SUPPRESSION_ID.test(o.id))
    throw new GatewayError('GW_USAGE', '--id must be a suppression id (sup_ and 12 letters)');
  const policy = subjectPolicy(loaded, o.tenant);
  const tokens =
    o.token !== undefined
      ? [o.token]
      : number !== undefined
        ? suppressionTokensOf(policy, number).map((t) => t.token)
        : [];
  const gone = await owningState(loaded, 'subject unsuppress', async (audit) => {
    const list = listOf(loaded, audit);
    if (o.id !== undefined) {
      const one = await list.remove(policy.id, o.id, actor());
      return one === undefined ? [] : [one];
    }
    return list.removeMatching(policy.id, tokens, actor());
  });
  if (gone.length === 0) {
    out(`no suppression of tenant ${policy.id} matched; nothing changed\n`);
    return 1;
  }
  out(`removed from tenant ${policy.id}'s suppressions: ${gone.map((e) => e.id).join(', ')}\n`);
  return 0;
}

/** Read-only: no lock, works beside a running gateway. */
export function suppressions(o: TenantOptions, env: Env, rawOut: Out): number {
  const out = guardedOut(rawOut, []);
  const loaded = loadConfigFile(o.config, env);
  const policy = subjectPolicy(loaded, o.tenant);
  const dir = loaded.config.storage.dir;
  const r = openSuppressionStore(dir, storeCiphersOf(loaded, dir).suppression).load(policy.id);
  if (!r.readable)
    throw new GatewayError(
      'GW_SUPPRESSION_STORE',
      `suppression list of tenant "${policy.id}" is unreadable (${r.problem}); the gateway withholds all its records until it is fixed`,
    );
  out(
    `tenant ${policy.id}: ${r.entries.length} suppression${r.entries.length === 1 ? '' : 's'}, mode ${policy.suppression?.mode ?? 'withhold'}\n`,
  );
  for (const e of r.entries) {
    const v = viewOf(e, policy, Date.now());
    const cover = v.coversSigningKey === false ? '  NO TOKEN UNDER THE SIGNING KEY: re-add by number' : '';
    out(`  ${e.id}  added ${e.addedAt} by ${e.addedBy} (by ${e.via})${cover}\n`);
    for (const t of e.tokens) out(`    kid ${t.kid ?? '(unknown)'}  token ${t.token}\n`);
  }
  return 0;
}

export async function erase(o: EraseOptions, number: string, env: Env, rawOut: Out): Promise<number> {
  const out = guardedOut(rawOut, [number]);
  const loaded = loadConfigFile(o.config, env);
  const reason = checkedReason(o.reason);
  const policy = subjectPolicy(loaded, o.tenant);
  const subject = subjectTokens(policy, number);
  if (subject === undefined)
    throw new GatewayError('GW_USAGE', 'not a subscriber number (withheld or empty): nothing to erase');
  const sink = loaded.config.sink;
  if (sink.type !== 'kafka')
    throw new GatewayError(
      'GW_USAGE',
      `subject erase publishes an erasure request to Kafka, and sink.type is ${sink.type}: use \`subject suppress\`, and delete the subscriber's records from the ${sink.type} output yourself`,
    );
  const sasl = kafkaSasl(loaded, env);
  // Created with the tenant's retention when the broker does not have it yet (brokers do not auto-create).
  const spec = gatewayTopicsOf(loaded)!.tenant(policy.id, 'erasure');
  const topic = spec.name;
  const done = await owningState(loaded, 'subject erase', (audit) =>
    eraseSubject(
      {
        suppressions: listOf(loaded, audit),
        // Spooled records are sealed under the tenant's key: each is opened to be matched (and stays sealed if kept).
        purgeSpool: (drop) => purgeSpoolDir(spoolDir(loaded.config), sealedLineMatcher(spoolKeysFor(loaded), drop)),
        publish: (request) =>
          publishOnce(
            { brokers: sink.brokers, clientId: sink.clientId, ssl: sink.ssl, sasl, timeoutMs: sink.requestTimeoutMs },
            spec,
            [{ key: request.id, value: JSON.stringify(request) }],
          ),
        audit,
      },
      subject,
      actor(),
      reason,
    ),
  );
  out(
    [
      `erase: tenant ${policy.id}, subscriber's tokens under ${subject.keys.length} key${subject.keys.length === 1 ? '' : 's'} (${subject.keys.map((k) => k.keyId).join(', ')})`,
      `  suppression: ${done.suppression.created ? 'added' : 'already present'} (${done.suppression.entry.id}); their records are ${modeWord(policy.suppression?.mode)} from the gateway's next start`,
      `  spool: removed ${done.spool.removed} record${done.spool.removed === 1 ? '' : 's'} (${done.spool.rewritten} of ${done.spool.segments} segment${done.spool.segments === 1 ? '' : 's'} rewritten)`,
      done.published
        ? `  erasure request ${done.request.id} published to ${topic}`
        : `  erasure request NOT published to ${topic} (${done.publishError}): run the same command again once Kafka answers${done.publishReason === undefined ? '' : `\n    ${done.publishReason}`}`,
      `  audit: recorded in ${auditLogPath(loaded.config)}`,
      '',
    ].join('\n'),
  );
  return done.published ? 0 : 1;
}

/** `tenant shred`: refused unless --confirm-destroy-keys repeats the tenant id. */
export async function shred(o: ShredOptions, env: Env, out: Out): Promise<number> {
  const tenant = o.tenant;
  if (o.confirmDestroyKeys !== tenant) {
    throw new GatewayError(
      'GW_USAGE',
      `refusing to shred: this destroys tenant "${tenant}"'s keys for good (its tokens can never be linked or revealed again). Repeat the tenant id to confirm: --confirm-destroy-keys ${tenant}`,
    );
  }
  const reason = checkedReason(o.reason);
  const loaded = loadConfigFile(o.config, env);
  const plan = planShred(loaded, tenant);
  const done = await owningState(loaded, 'tenant shred', (audit) =>
    executeShred(plan, {
      stateDir: loaded.config.storage.dir,
      spoolDir: spoolDir(loaded.config),
      suppressions: openSuppressionStore(
        loaded.config.storage.dir,
        storeCiphersOf(loaded, loaded.config.storage.dir).suppression,
      ),
      audit,
      actor: actor(),
      reason,
    }),
  );
  // The consent part (no key needed): AstDB entries over AMI, the tenant's keys on the consent topic tombstoned.
  const consent = {
    astdb: await shredAstdb(loaded, tenant, amiTls(loaded)),
    topic: await shredConsentTopic(loaded, env, tenant),
  };
  const left = done.keys.filter((k) => !k.destroyed);
  out(
    [
      `tenant ${tenant}: crypto-shredded${plan.alreadyShreddedAt === undefined ? '' : ` (tombstone from ${done.tombstone.shreddedAt} kept; retried what was left)`}`,
      `  tombstone: ${readShredTombstone(loaded.config.storage.dir, tenant) === undefined ? 'MISSING' : 'written'}; its keys never load again, its records are withheld, token/reveal/erase/export refuse it`,
      ...(done.keysFile === null ? [] : [`  keys file: ${done.keysFile.note}`]),
      ...done.keys.map((k) => `  kid ${k.kid}: ${k.destroyed ? '' : 'NOT DESTROYED: '}${k.note}`),
      `  suppression list: ${done.suppressionListDeleted ? 'deleted' : 'none'}`,
      ...(done.spooledRecords > 0
        ? [
            `  spool: ${done.spooledRecords} record${done.spooledRecords === 1 ? '' : 's'} of the tenant can no longer be read (sealed under its destroyed id key): never sent, the gateway drops them when it drains the spool (records_withheld_total{reason="shredded"})`,
          ]
        : []),
      ...consentShredLines(tenant, loaded.config.consent.astdb.family, consent),
      `  next: remove rules/${tenant}.yaml (or its inline tenant) when offboarding is complete`,
      '',
    ].join('\n'),
  );
  if (left.length > 0) {
    out(
      `WARNING: ${left.length} key${left.length === 1 ? '' : 's'} of tenant ${tenant} still exist${left.length === 1 ? 's' : ''} outside the gateway's reach (see above): until destroyed there, whoever holds ${left.length === 1 ? 'it' : 'them'} can still link the tenant's tokens\n`,
    );
    return 1;
  }
  return consent.topic.result === 'failed' ? 1 : 0;
}

// In process, argv in (test/subject/* call these): the same definitions and parsing as the command line; errors are thrown.
const quietIo = (out: Out): CliIo => ({ stdout: out, stderr: () => undefined, stderrIsTty: false });

/** `callveil subject <sub> ...args` in process. */
export function cmdSubjectRights(
  sub: string | undefined,
  args: readonly string[],
  env: Env,
  out: Out,
): Promise<number> {
  const argv = ['subject', ...(sub === undefined ? [] : [sub]), ...args];
  return runInProcess([registerSubject], argv, { env, io: quietIo(out) });
}

/** `callveil tenant ...args` in process. */
export function cmdTenant(args: readonly string[], env: Env, out: Out): Promise<number> {
  return runInProcess([registerTenant], ['tenant', ...args], { env, io: quietIo(out) });
}
