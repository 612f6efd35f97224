// `callveil subject suppress|unsuppress|suppressions|erase` and `callveil
// tenant shred`: a data-protection officer's commands for restriction,
// objection, erasure and offboarding. A subscriber's number given here is
// used in memory only: output, errors and audit entries carry tokens and ids.
// Commands that change state take the state dir's lock (subject/state-lock):
// they run while the gateway is stopped; while it runs, suppressions go
// through its tenant API instead.
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { assertNoRawNumber, openAuditLog, type AuditLog } from '../audit/audit-log.js';
import { kafkaSasl, loadConfigFile, type LoadedConfig } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { auditLogPath, spoolDir } from '../main.js';
import { publishOnce } from '../sink/kafka.js';
import { gatewayTopicsOf } from '../sink/topics.js';
import { purgeSpoolDir } from '../sink/spool.js';
import { eraseSubject } from '../subject/erase.js';
import { executeShred, planShred } from '../subject/shred.js';
import { readShredTombstone } from '../subject/shred-tombstone.js';
import { acquireStateLock } from '../subject/state-lock.js';
import { openSuppressionList, suppressionTokensOf, viewOf, type SuppressionList } from '../subject/suppression.js';
import { openSuppressionStore, SUPPRESSION_ID, TOKEN } from '../subject/suppression-store.js';
import { subjectPolicy, subjectTokens } from '../subject/tokens.js';
import { safeUser } from './rules.js';

type Env = Readonly<Record<string, string | undefined>>;
type Out = (text: string) => void;

const SUBCOMMANDS = 'export, suppress, unsuppress, suppressions, erase';

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

function loadFor(config: string | undefined, env: Env, what: string): LoadedConfig {
  if (config === undefined) throw new GatewayError('GW_USAGE', `${what} needs --config FILE`);
  return loadConfigFile(config, env);
}

/** Runs `fn` owning the state dir, with the audit log open; the lock is released whatever happens. */
async function owningState<T>(loaded: LoadedConfig, command: string, fn: (audit: AuditLog) => Promise<T>): Promise<T> {
  const dir = loaded.config.storage.dir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = acquireStateLock(dir, { kind: 'cli', command });
  try {
    const audit = openAuditLog(auditLogPath(loaded.config));
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
  return openSuppressionList(loaded.config.storage.dir, audit);
}

async function suppress(args: string[], env: Env, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      tenant: { type: 'string' },
      token: { type: 'string' },
      kid: { type: 'string' },
    },
  });
  const loaded = loadFor(values.config, env, 'subject suppress');
  if ((positionals.length === 1) === (values.token !== undefined) || positionals.length > 1)
    throw new GatewayError(
      'GW_USAGE',
      'subject suppress needs --tenant T and either one number or --token TOKEN [--kid K]',
    );
  if (values.token !== undefined && !TOKEN.test(values.token))
    throw new GatewayError('GW_USAGE', '--token must be a token as records carry it (base64url, 14-43 characters)');
  const policy = subjectPolicy(loaded, values.tenant);
  const tokens =
    values.token !== undefined
      ? [{ kid: values.kid ?? null, token: values.token }]
      : suppressionTokensOf(policy, positionals[0]!);
  const c = await owningState(loaded, 'subject suppress', (audit) =>
    listOf(loaded, audit).add(policy.id, tokens, values.token !== undefined ? 'token' : 'number', actor()),
  );
  const kids = c.entry.tokens.map((t) => t.kid ?? '(unknown key)').join(', ');
  out(
    `${c.created ? 'suppressed' : 'already suppressed'} in tenant ${policy.id}: ${c.entry.id} (tokens under ${kids}); their records are ${modeWord(policy.suppression?.mode)} from the gateway's next start\n`,
  );
  return 0;
}

async function unsuppress(args: string[], env: Env, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      tenant: { type: 'string' },
      id: { type: 'string' },
      token: { type: 'string' },
    },
  });
  const loaded = loadFor(values.config, env, 'subject unsuppress');
  const given = [positionals.length > 0, values.id !== undefined, values.token !== undefined].filter(Boolean).length;
  if (given !== 1 || positionals.length > 1)
    throw new GatewayError(
      'GW_USAGE',
      'subject unsuppress needs --tenant T and one of: a number, --id ID, --token TOKEN',
    );
  if (values.id !== undefined && !SUPPRESSION_ID.test(values.id))
    throw new GatewayError('GW_USAGE', '--id must be a suppression id (sup_ and 12 letters)');
  const policy = subjectPolicy(loaded, values.tenant);
  const tokens =
    values.token !== undefined
      ? [values.token]
      : positionals.length === 1
        ? suppressionTokensOf(policy, positionals[0]!).map((t) => t.token)
        : [];
  const gone = await owningState(loaded, 'subject unsuppress', async (audit) => {
    const list = listOf(loaded, audit);
    if (values.id !== undefined) {
      const one = await list.remove(policy.id, values.id, actor());
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
function suppressions(args: string[], env: Env, out: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, tenant: { type: 'string' } },
  });
  const loaded = loadFor(values.config, env, 'subject suppressions');
  if (positionals.length > 0) throw new GatewayError('GW_USAGE', 'subject suppressions takes --tenant T and no number');
  const policy = subjectPolicy(loaded, values.tenant);
  const r = openSuppressionStore(loaded.config.storage.dir).load(policy.id);
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

async function erase(args: string[], env: Env, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, tenant: { type: 'string' }, reason: { type: 'string' } },
  });
  const loaded = loadFor(values.config, env, 'subject erase');
  if (positionals.length !== 1)
    throw new GatewayError('GW_USAGE', 'subject erase needs --config FILE --tenant T and one number');
  const reason = checkedReason(values.reason);
  const policy = subjectPolicy(loaded, values.tenant);
  const subject = subjectTokens(policy, positionals[0]!);
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
  const o = await owningState(loaded, 'subject erase', (audit) =>
    eraseSubject(
      {
        suppressions: listOf(loaded, audit),
        purgeSpool: (drop) => purgeSpoolDir(spoolDir(loaded.config), drop),
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
      `  suppression: ${o.suppression.created ? 'added' : 'already present'} (${o.suppression.entry.id}); their records are ${modeWord(policy.suppression?.mode)} from the gateway's next start`,
      `  spool: removed ${o.spool.removed} record${o.spool.removed === 1 ? '' : 's'} (${o.spool.rewritten} of ${o.spool.segments} segment${o.spool.segments === 1 ? '' : 's'} rewritten)`,
      o.published
        ? `  erasure request ${o.request.id} published to ${topic}`
        : `  erasure request NOT published to ${topic} (${o.publishError}): run the same command again once Kafka answers${o.publishReason === undefined ? '' : `\n    ${o.publishReason}`}`,
      `  audit: recorded in ${auditLogPath(loaded.config)}`,
      '',
    ].join('\n'),
  );
  return o.published ? 0 : 1;
}

/** `subject <suppress|unsuppress|suppressions|erase> ...` */
export async function cmdSubjectRights(sub: string | undefined, args: string[], env: Env, out: Out): Promise<number> {
  switch (sub) {
    case 'suppress':
      return suppress(args, env, out);
    case 'unsuppress':
      return unsuppress(args, env, out);
    case 'suppressions':
      return suppressions(args, env, out);
    case 'erase':
      return erase(args, env, out);
    default:
      throw new GatewayError('GW_USAGE', `subject takes a subcommand: ${SUBCOMMANDS}`);
  }
}

/** `tenant shred --config FILE --tenant T --confirm-destroy-keys T [--reason TEXT]` */
export async function cmdTenant(args: string[], env: Env, out: Out): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'shred') throw new GatewayError('GW_USAGE', 'tenant takes one subcommand: shred');
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      tenant: { type: 'string' },
      'confirm-destroy-keys': { type: 'string' },
      reason: { type: 'string' },
    },
  });
  if (positionals.length > 0 || values.tenant === undefined)
    throw new GatewayError('GW_USAGE', 'tenant shred needs --config FILE --tenant T --confirm-destroy-keys T');
  const tenant = values.tenant;
  if (values['confirm-destroy-keys'] !== tenant) {
    throw new GatewayError(
      'GW_USAGE',
      `refusing to shred: this destroys tenant "${tenant}"'s keys for good (its tokens can never be linked or revealed again). Repeat the tenant id to confirm: --confirm-destroy-keys ${tenant}`,
    );
  }
  const reason = checkedReason(values.reason);
  const loaded = loadFor(values.config, env, 'tenant shred');
  const plan = planShred(loaded, tenant);
  const o = await owningState(loaded, 'tenant shred', (audit) =>
    executeShred(plan, {
      stateDir: loaded.config.storage.dir,
      spoolDir: spoolDir(loaded.config),
      suppressions: openSuppressionStore(loaded.config.storage.dir),
      audit,
      actor: actor(),
      reason,
    }),
  );
  const left = o.keys.filter((k) => !k.destroyed);
  out(
    [
      `tenant ${tenant}: crypto-shredded${plan.alreadyShreddedAt === undefined ? '' : ` (tombstone from ${o.tombstone.shreddedAt} kept; retried what was left)`}`,
      `  tombstone: ${readShredTombstone(loaded.config.storage.dir, tenant) === undefined ? 'MISSING' : 'written'}; its keys never load again, its records are withheld, token/reveal/erase/export refuse it`,
      ...(o.keysFile === null ? [] : [`  keys file: ${o.keysFile.note}`]),
      ...o.keys.map((k) => `  kid ${k.kid}: ${k.destroyed ? '' : 'NOT DESTROYED: '}${k.note}`),
      `  suppression list: ${o.suppressionListDeleted ? 'deleted' : 'none'}`,
      ...(o.spooledRecords > 0
        ? [
            `  spool: ${o.spooledRecords} record${o.spooledRecords === 1 ? '' : 's'} of the tenant still wait for Kafka (tokens only, no longer linkable)`,
          ]
        : []),
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
  return 0;
}
