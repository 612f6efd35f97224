// `callveil rules check`, `callveil token` and `callveil reveal`: the rules
// folder checked file by file, and the two lookups a data-protection officer
// needs. The lookups take a raw number or an FPE value on purpose: it is used
// in memory and never logged, echoed in an error, or written to the audit log.
import { auditKeyOf } from '../audit/audit-key.js';
import { storeCipherOf } from '../store-cipher.js';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { assertNoRawNumber, openAuditLog } from '../audit/audit-log.js';
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
import { runInProcess, type CliIo, type Env } from './cli-command.js';
import { guardedOut } from '../egress/cli-output.js';
import { registerRules } from './commands/rules.js';

type Out = (text: string) => void;

export interface RulesCheckOptions {
  readonly keys?: string;
  readonly defaultTenant?: string;
}

export interface TokenOptions {
  readonly config: string;
  readonly tenant: string;
}

export interface RevealOptions {
  readonly config: string;
  readonly tenant: string;
  readonly kid: string;
  readonly reason?: string;
}

/** `rules check [DIR]`: 0 when every file is valid, 1 on any problem. */
export function rulesCheck(folder: string, o: RulesCheckOptions, env: Env, out: Out): number {
  const dir = resolve(folder);
  const r = loadRules(
    { dir, keysFile: o.keys === undefined ? undefined : resolve(o.keys), defaultTenant: o.defaultTenant },
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

/** `token <number>`: the number's pseudonyms under every live key of the tenant. */
export function token(o: TokenOptions, number: string, env: Env, rawOut: Out): number {
  const out = guardedOut(rawOut, [number]);
  const policy = subjectPolicy(loadConfigFile(o.config, env), o.tenant);
  const s = subjectTokens(policy, number);
  if (s === undefined) {
    out(`not a number: ${policy.classify(number).kind} parties carry no token\n`);
    return 1;
  }
  out(`tenant ${policy.id}, kind ${s.kind}${s.callingCode === null ? '' : `, country code ${s.callingCode}`}:\n`);
  const readings = new Set(s.keys.map((k) => k.kind)).size;
  for (const k of s.keys)
    out(
      `  kid ${k.keyId}  token ${k.token}${k.fpe.length > 0 ? `  fpe ${k.fpe.join(' ')}` : ''}${readings > 1 ? `  (as ${k.kind === 'extension' ? 'an internal extension' : 'a number on a trunk'})` : ''}\n`,
    );
  return 0;
}

/** `reveal <fpe value>`: audited, warned, then printed. */
export async function reveal(o: RevealOptions, value: string, env: Env, out: Out, warn: Out): Promise<number> {
  const loaded = loadConfigFile(o.config, env);
  const policy = subjectPolicy(loaded, o.tenant);
  const key = findKey(policy.keys, o.kid);
  if (key === undefined)
    throw new GatewayError(
      'GW_PRIVACY_NO_KEY',
      `tenant "${policy.id}" has no live key "${o.kid}" (retired keys cannot reveal)`,
    );
  const number = fpeDecrypt(policy.id, key, value);
  if (number === undefined) throw new GatewayError('GW_USAGE', 'the value is not an fpe value (+<digits>_<digits>)');
  const auditKey = auditKeyOf(loaded);
  // Refused, not redacted: the reveal must not happen with a reason its audit entry cannot keep.
  assertNoRawNumber('reason', o.reason);
  ensureStorageDir(loaded.config.storage.dir);
  // The audit log has one writer at a time: a running gateway holds it, and the reveal is refused (nothing is printed).
  const lock = acquireStateLock(loaded.config.storage.dir, { kind: 'cli', command: 'reveal' });
  warn(
    `callveil: WARNING: revealing a subscriber's phone number of tenant "${policy.id}". This is personal data; the reveal is recorded in the audit log.\n`,
  );
  const auditPath = auditLogPath(loaded.config);
  const audit = openAuditLog(auditPath, { key: auditKey, cipher: storeCipherOf(loaded, 'audit', auditPath) });
  try {
    // The subject is the number's keyed token: auditors can find the subscriber's records, the log holds no number.
    const n = policy.classify(number);
    await audit.append({
      actor: `cli:${safeUser()}`,
      action: 'reveal',
      tenant: policy.id,
      subject: `token:${pseudonym(policy.id, key, n.kind, n.canonical, policy.tokenBytes)}`,
      detail: { kid: key.keyId, ...(o.reason === undefined ? {} : { reason: o.reason }) },
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

// In process, argv in (test/subject/* call these): the same definitions and parsing as the command line; errors are thrown.
const quietIo = (out: Out, err: Out = () => undefined): CliIo => ({ stdout: out, stderr: err, stderrIsTty: false });

/** `callveil token ...args` in process. */
export function cmdToken(args: readonly string[], env: Env, out: Out): Promise<number> {
  return runInProcess([registerRules], ['token', ...args], { env, io: quietIo(out) });
}

/** `callveil reveal ...args` in process; `warn` gets the warning. */
export function cmdReveal(args: readonly string[], env: Env, out: Out, warn: Out): Promise<number> {
  return runInProcess([registerRules], ['reveal', ...args], { env, io: quietIo(out, warn) });
}
