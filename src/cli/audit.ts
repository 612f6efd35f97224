// `callveil audit verify`: the audit log's keyed chain, checked end to end
// under the audit key, and against the last chain head published off the box
// (`<prefix>.audit`, or a head given with --head).
import { auditKeyOf } from '../audit/audit-key.js';
import { storeCipherOf } from '../store-cipher.js';
import { verifyAuditLog, type AuditHead } from '../audit/audit-log.js';
import { parseHead } from '../audit/head-publisher.js';
import type { LoadedConfig } from '../config/load.js';
import { kafkaSasl } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { auditInstanceId, auditLogPath } from '../main.js';
import { readTopicOnce } from '../sink/kafka-reader.js';
import { gatewayTopicsOf } from '../sink/topics.js';
import type { CliIo, Env } from './cli-command.js';
import { loadConfig } from './run.js';

export interface AuditVerifyOptions {
  readonly config?: string;
  readonly file?: string;
  /** `<seq>:<mac>`, or a published head's JSON. */
  readonly head?: string;
  /** false (--no-kafka): do not read the published heads. */
  readonly kafka?: boolean;
  readonly instance?: string;
}

type Head = Pick<AuditHead, 'seq' | 'mac'> & { readonly from: string };

function headOption(text: string): Head {
  const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(text.trim());
  if (m !== null) return { seq: Number(m[1]), mac: m[2]!, from: '--head' };
  const h = parseHead(text);
  if (h === undefined)
    throw new GatewayError('GW_USAGE', '--head: expected <seq>:<64 hex MAC>, or a head as published to <prefix>.audit');
  return { seq: h.seq, mac: h.mac, from: '--head' };
}

/** The newest head this instance published, read once from `<prefix>.audit`. */
async function publishedHead(loaded: LoadedConfig, env: Env, instance: string): Promise<Head | undefined> {
  const s = loaded.config.sink;
  if (s.type !== 'kafka') return undefined;
  const topic = gatewayTopicsOf(loaded)!.shared('audit').name;
  let best: AuditHead | undefined;
  await readTopicOnce(
    {
      brokers: s.brokers,
      clientId: s.clientId,
      ssl: s.ssl,
      sasl: kafkaSasl(loaded, env),
      topic,
      timeoutMs: Math.min(s.requestTimeoutMs, 10_000),
    },
    (value) => {
      const h = value === null ? undefined : parseHead(value.toString('utf8'));
      if (h !== undefined && h.instance === instance && (best === undefined || h.seq > best.seq)) best = h;
    },
  );
  const b = best as AuditHead | undefined;
  return b === undefined
    ? undefined
    : { seq: b.seq, mac: b.mac, from: `${topic} (instance ${instance}, published ${b.at})` };
}

export async function auditVerify(o: AuditVerifyOptions, env: Env, io: CliIo): Promise<number> {
  const loaded = loadConfig(o.config, env, { type: 'stdout' });
  const path = o.file ?? auditLogPath(loaded.config);
  const key = auditKeyOf(loaded);
  const instance = o.instance ?? auditInstanceId(loaded.config);
  const head =
    o.head !== undefined
      ? headOption(o.head)
      : o.kafka === false
        ? undefined
        : await publishedHead(loaded, env, instance);
  const cipher = storeCipherOf(loaded, 'audit', path);
  let verdict = verifyAuditLog(path, { key, cipher, ...(head === undefined ? {} : { head }) });
  // A log (or a backup of one) from before encryption at rest: wholly plaintext, verified as such, and said.
  const plaintext = !verdict.ok && verdict.reason === 'plaintext' && verdict.entries === 0;
  if (plaintext) verdict = verifyAuditLog(path, { key, ...(head === undefined ? {} : { head }) });
  if (verdict.ok) {
    // Retention deletes old segments and anchors the cut (README "Retention"): say so, so a short log is not a surprise.
    const notes = [
      verdict.expired === undefined
        ? ''
        : ` (${verdict.expired} older entries expired under retention; verified from the anchor)`,
      verdict.legacy === undefined
        ? ''
        : `; its first ${verdict.legacy} entries predate audit keys (hash-chained only, sealed by audit.upgrade)`,
      verdict.head === undefined
        ? head === undefined
          ? '; no published head to compare with: a cut tail cannot be ruled out (give --head, or use a Kafka sink)'
          : ''
        : verdict.head.matched === 'entry'
          ? `; holds the head published to ${head!.from} (seq ${verdict.head.seq})`
          : `; the published head (seq ${verdict.head.seq}) is older than the retained entries`,
    ];
    io.stdout(
      `audit log ${path}: ${verdict.entries} entries, chain intact under the audit key${notes.slice(0, 2).join('')}${plaintext ? '; stored in plaintext (written before encryption at rest: the gateway encrypts it at its next start, or `callveil keys migrate`)' : ', every entry encrypted under the storage key'}${notes.slice(2).join('')}\n`,
    );
    return 0;
  }
  const where =
    verdict.line > 0 ? ` at line ${verdict.line}${verdict.file === undefined ? '' : ` of ${verdict.file}`}` : '';
  const against =
    verdict.reason === 'truncated' || verdict.reason === 'head-mismatch' ? ` (head from ${head!.from})` : '';
  io.stdout(
    `audit log ${path}: BROKEN (${verdict.reason})${where}: ${verdict.problem}${against} (${verdict.entries} entries before it are intact)\n`,
  );
  return 1;
}
