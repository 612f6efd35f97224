// `callveil rules check`, `callveil token` and `callveil reveal`: the rules
// folder checked file by file, and the two lookups a data-protection officer
// needs. The lookups take a raw number or an FPE value on purpose: it is used
// in memory and never logged, echoed in an error, or written to the audit log.
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openAuditLog } from '../audit/audit-log.js';
import { loadConfigFile } from '../config/load.js';
import { ensureStorageDir } from '../config/storage-dir.js';
import { GatewayError } from '../errors.js';
import { auditLogPath } from '../main.js';
import { acquireStateLock } from '../subject/state-lock.js';
import { findKey } from '../privacy/keys.js';
import { fpeDecrypt } from '../privacy/methods.js';
import { pseudonym } from '../privacy/pseudonymise.js';
import { formatRuleProblems, loadRules } from '../rules/load.js';
import { subjectPolicy, subjectTokens } from '../subject/tokens.js';

type Env = Readonly<Record<string, string | undefined>>;
type Out = (text: string) => void;

/** `rules check [DIR] [--keys FILE] [--default-tenant T]`: 0 when every file is valid, 1 on any problem. */
export function cmdRulesCheck(args: string[], env: Env, out: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { keys: { type: 'string' }, 'default-tenant': { type: 'string' } },
  });
  if (positionals[0] !== 'check' || positionals.length > 2)
    throw new GatewayError('GW_USAGE', 'rules takes one subcommand: check [DIR]');
  const dir = resolve(positionals[1] ?? 'rules');
  const r = loadRules(
    {
      dir,
      keysFile: values.keys === undefined ? undefined : resolve(values.keys),
      defaultTenant: values['default-tenant'],
    },
    env,
  );
  if (!r.ok) {
    out(
      `rules ${dir}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}:\n${formatRuleProblems(r.problems)}\n`,
    );
    return 1;
  }
  for (const w of r.loaded.warnings) out(`  note: ${w}\n`);
  const ids = [...r.loaded.rules.tenants.keys()];
  out(
    `rules ${dir}: ${r.loaded.files.length} file${r.loaded.files.length === 1 ? '' : 's'} valid, tenants ${ids.join(', ')}\n`,
  );
  return 0;
}

/** `token --config FILE --tenant T <number>`: the number's pseudonyms under every live key of T. */
export function cmdToken(args: string[], env: Env, out: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, tenant: { type: 'string' } },
  });
  if (values.config === undefined || positionals.length !== 1)
    throw new GatewayError('GW_USAGE', 'token needs --config FILE --tenant T and one number');
  const policy = subjectPolicy(loadConfigFile(values.config, env), values.tenant);
  const s = subjectTokens(policy, positionals[0]!);
  if (s === undefined) {
    out(`not a number: ${policy.classify(positionals[0]!).kind} parties carry no token\n`);
    return 1;
  }
  out(`tenant ${policy.id}, kind ${s.kind}${s.callingCode === null ? '' : `, country code ${s.callingCode}`}:\n`);
  for (const k of s.keys)
    out(`  kid ${k.keyId}  token ${k.token}${k.fpe.length > 0 ? `  fpe ${k.fpe.join(' ')}` : ''}\n`);
  return 0;
}

/** `reveal --config FILE --tenant T --kid K <fpe value>`: audited, warned, then printed. */
export async function cmdReveal(args: string[], env: Env, out: Out, warn: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      tenant: { type: 'string' },
      kid: { type: 'string' },
      reason: { type: 'string' },
    },
  });
  if (values.config === undefined || values.kid === undefined || positionals.length !== 1)
    throw new GatewayError('GW_USAGE', 'reveal needs --config FILE --tenant T --kid K and one fpe value');
  const loaded = loadConfigFile(values.config, env);
  const policy = subjectPolicy(loaded, values.tenant);
  const key = findKey(policy.keys, values.kid);
  if (key === undefined)
    throw new GatewayError(
      'GW_PRIVACY_NO_KEY',
      `tenant "${policy.id}" has no live key "${values.kid}" (retired keys cannot reveal)`,
    );
  const number = fpeDecrypt(policy.id, key, positionals[0]!);
  if (number === undefined) throw new GatewayError('GW_USAGE', 'the value is not an fpe value (+<digits>_<digits>)');
  ensureStorageDir(loaded.config.storage.dir);
  // The audit log has one writer at a time: a running gateway holds it, and the reveal is refused (nothing is printed).
  const lock = acquireStateLock(loaded.config.storage.dir, { kind: 'cli', command: 'reveal' });
  warn(
    `callveil: WARNING: revealing a subscriber's phone number of tenant "${policy.id}". This is personal data; the reveal is recorded in the audit log.\n`,
  );
  const audit = openAuditLog(auditLogPath(loaded.config));
  try {
    // The subject is the number's keyed token: auditors can find the subscriber's records, the log holds no number.
    const n = policy.classify(number);
    await audit.append({
      actor: `cli:${safeUser()}`,
      action: 'reveal',
      tenant: policy.id,
      subject: `token:${pseudonym(policy.id, key, n.kind, n.canonical, policy.tokenBytes)}`,
      detail: { kid: key.keyId, ...(values.reason === undefined ? {} : { reason: values.reason }) },
    });
  } finally {
    audit.close();
    lock.release();
  }
  out(`${number}\n`);
  return 0;
}

export function safeUser(): string {
  try {
    return (
      userInfo()
        .username.replace(/[^A-Za-z0-9._-]/g, '_')
        .slice(0, 40) || 'unknown'
    );
  } catch {
    return 'unknown';
  }
}
