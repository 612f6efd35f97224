// `callveil audit verify`: the audit log's hash chain, checked end to end.
import { verifyAuditLog } from '../audit/audit-log.js';
import { auditLogPath } from '../main.js';
import type { CliIo, Env } from './cli-command.js';
import { loadConfig } from './run.js';

export interface AuditVerifyOptions {
  readonly config?: string;
  readonly file?: string;
}

export function auditVerify(o: AuditVerifyOptions, env: Env, io: CliIo): number {
  const path = o.file ?? auditLogPath(loadConfig(o.config, env, { type: 'stdout' }).config);
  const verdict = verifyAuditLog(path);
  if (verdict.ok) {
    // Retention deletes old segments and anchors the cut (README "Retention"): say so, so a short log is not a surprise.
    const expired =
      verdict.expired === undefined
        ? ''
        : ` (${verdict.expired} older entries expired under retention; verified from the anchor)`;
    io.stdout(`audit log ${path}: ${verdict.entries} entries, chain intact${expired}\n`);
    return 0;
  }
  io.stdout(
    `audit log ${path}: BROKEN at line ${verdict.line}${verdict.file === undefined ? '' : ` of ${verdict.file}`}: ${verdict.problem} (${verdict.entries} entries before it are intact)\n`,
  );
  return 1;
}
