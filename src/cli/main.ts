// `callveil` command line: parses arguments and calls the composition root.
// stdout carries command output only (the replay summary line, records for
// the stdout sink); logs go to stderr.
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { embeddedDefaults, loadConfigFile, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { cdrJsonSchema } from '../privacy/cdr-record.js';
import { auditLogPath, openSink, replayCapture, startGateway } from '../main.js';
import { verifyAuditLog } from '../audit/audit-log.js';
import { runChecks } from './check.js';
import { cmdReveal, cmdRulesCheck, cmdToken } from './rules.js';
import { cmdSubjectRights, cmdTenant } from './subject-rights.js';
import { cmdSubjectExport } from './subject-export.js';
import { erasureJsonSchema } from '../subject/erase-request.js';

const USAGE = `callveil — privacy gateway for Asterisk: AMI events in, pseudonymised CDRs out

Usage:
  callveil run [--config FILE]                         the live gateway (AMI -> sink from config)
  callveil replay <capture> [--config FILE] [--out FILE.jsonl]
                                                       push a recorded .ami/.ami.gz capture through the
                                                       whole pipeline; prints one JSON summary line
  callveil demo                                        replay a bundled real capture into ./callveil-out/
  callveil schema [record|erasure]                     print the record's (or the erasure request's) JSON Schema
  callveil audit verify [--config FILE | --file PATH]  check the audit log's hash chain
  callveil check --config FILE                         check config, keys, storage, AMI login and Kafka
  callveil rules check [DIR] [--keys FILE]             validate a rules folder (default ./rules); exit 1 on any problem
  callveil token --config FILE --tenant T <number>     the number's tokens under every live key of T (for a DPO)
  callveil reveal --config FILE --tenant T --kid K <fpe value> [--reason TEXT]
                                                       decrypt an fpe value (audited; prints a warning)
  callveil subject suppress --config FILE --tenant T (<number> | --token TOKEN [--kid K])
                                                       restrict/object: withhold (or redact, per rules) the
                                                       subscriber's records; audited. Gateway stopped (else use the API)
  callveil subject unsuppress --config FILE --tenant T (<number> | --id ID | --token TOKEN)
  callveil subject suppressions --config FILE --tenant T
                                                       list a tenant's suppressions (tokens, never numbers)
  callveil subject export --config FILE --tenant T [--since TIME] [--out FILE] <number>
                                                       the subscriber's records from T's Kafka topic as a JSON
                                                       array (access/portability); counts on stderr; read-only
  callveil subject erase --config FILE --tenant T <number> [--reason TEXT]
                                                       suppress, purge the local spool, publish an erasure
                                                       request to <prefix>.<T>.erasure; audited. Gateway stopped
  callveil tenant shred --config FILE --tenant T --confirm-destroy-keys T [--reason TEXT]
                                                       crypto-shred a tenant: destroy its keys for good; audited
  callveil help

Configuration: YAML or JSON file (see README) plus CALLVEIL_* environment variables.`;

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEMO_CAPTURE = join(PACKAGE_ROOT, 'test', 'fixtures', 'ami', 'inbound-pstn.ami.gz');

type Env = Readonly<Record<string, string | undefined>>;

function loadConfig(file: string | undefined, env: Env, fallbackSink: Config['sink']): LoadedConfig {
  return file === undefined ? embeddedDefaults(env, fallbackSink) : loadConfigFile(file, env);
}

function logWarnings(log: Logger, loaded: LoadedConfig): void {
  for (const w of loaded.warnings) log.warn({ config: loaded.source }, w);
}

function progressPrinter(): ((events: number, records: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (events, records) => process.stderr.write(`\r  replaying: ${events} AMI events, ${records} records written `);
}

async function cmdReplay(args: string[], env: Env): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, out: { type: 'string' } },
  });
  if (positionals.length !== 1)
    throw new GatewayError('GW_USAGE', 'replay needs exactly one capture file (.ami or .ami.gz)');
  const out = values.out;
  const fallbackSink: Config['sink'] = out === undefined ? { type: 'stdout' } : { type: 'jsonl', path: out };
  const loaded = loadConfig(values.config, env, fallbackSink);
  const log = createLogger(loaded.config.log.level);
  logWarnings(log, loaded);
  // --out always wins: a replay never publishes to the configured Kafka by accident.
  const sinkConfig = out === undefined ? loaded : { ...loaded, config: { ...loaded.config, sink: fallbackSink } };
  const sink = await openSink(sinkConfig, env, log);
  const progress = progressPrinter();
  try {
    const s = await replayCapture({
      capturePath: positionals[0]!,
      loaded,
      sink,
      log,
      ...(progress ? { progress } : {}),
    });
    if (progress) process.stderr.write('\n');
    await sink.close();
    process.stdout.write(JSON.stringify({ events: s.events, cdrs: s.cdrs, withheld: s.withheld, ms: s.ms }) + '\n');
    return s.sinkFailures > 0 ? 1 : 0;
  } catch (err) {
    await sink.close().catch(() => undefined);
    throw err;
  }
}

async function cmdDemo(env: Env): Promise<number> {
  const out = join(process.cwd(), 'callveil-out', 'cdrs.jsonl');
  const loaded = embeddedDefaults(env, { type: 'jsonl', path: out });
  const log = createLogger(env.CALLVEIL_LOG_LEVEL ?? 'warn');
  const sink = await openSink(loaded, env, log);
  const progress = progressPrinter();
  const s = await replayCapture({ capturePath: DEMO_CAPTURE, loaded, sink, log, ...(progress ? { progress } : {}) });
  if (progress) process.stderr.write('\n');
  await sink.close();
  const rate = s.ms > 0 ? Math.round((s.events * 1000) / s.ms) : s.events;
  process.stdout.write(
    [
      `callveil demo: replayed ${basename(DEMO_CAPTURE)} (a real Asterisk 20 AMI session: 40 inbound PSTN calls)`,
      `  through a built-in AMI server on 127.0.0.1 and the real AMI client.`,
      `  ${s.events} AMI events -> ${s.counts.cdrs} CDRs: ${s.cdrs} written, ${s.withheld} withheld, ${s.sinkFailures} failed`,
      `  ${s.ms} ms (${rate} events/s)`,
      `  sanitized records: ${out}`,
      `  every number is a keyed pseudonym; the key was random for this run only.`,
      '',
    ].join('\n'),
  );
  return s.sinkFailures > 0 || s.cdrs === 0 ? 1 : 0;
}

async function cmdRun(args: string[], env: Env): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  const loaded = loadConfig(values.config, env, { type: 'stdout' });
  const log = createLogger(loaded.config.log.level);
  logWarnings(log, loaded);
  const gateway = await startGateway(loaded, env, log);
  log.info({ sink: loaded.config.sink.type, tenants: loaded.tenants.length }, 'gateway started');
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping: draining in-flight records');
      resolveStop();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await gateway.stop();
  const c = gateway.pipeline.counts();
  log.info({ events: c.events, published: c.published, withheld: c.withheld, sinkFailures: c.sinkFailures }, 'stopped');
  return 0;
}

async function cmdAudit(args: string[], env: Env): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, file: { type: 'string' } },
  });
  if (positionals[0] !== 'verify' || positionals.length !== 1)
    throw new GatewayError('GW_USAGE', 'audit takes one subcommand: verify');
  const path = values.file ?? auditLogPath(loadConfig(values.config, env, { type: 'stdout' }).config);
  const verdict = verifyAuditLog(path);
  if (verdict.ok) {
    // Retention deletes old segments and anchors the cut (README "Retention"): say so, so a short log is not a surprise.
    const expired =
      verdict.expired === undefined
        ? ''
        : ` (${verdict.expired} older entries expired under retention; verified from the anchor)`;
    process.stdout.write(`audit log ${path}: ${verdict.entries} entries, chain intact${expired}\n`);
    return 0;
  }
  process.stdout.write(
    `audit log ${path}: BROKEN at line ${verdict.line}${verdict.file === undefined ? '' : ` of ${verdict.file}`}: ${verdict.problem} (${verdict.entries} entries before it are intact)\n`,
  );
  return 1;
}

async function cmdCheck(args: string[], env: Env): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } } });
  if (values.config === undefined) throw new GatewayError('GW_USAGE', 'check needs --config FILE');
  const ok = await runChecks(values.config, env, (pass, what, detail) =>
    process.stdout.write(`${pass ? 'PASS' : 'FAIL'}  ${what}: ${detail}\n`),
  );
  process.stdout.write(ok ? 'all checks passed\n' : 'some checks failed\n');
  return ok ? 0 : 1;
}

export async function main(argv: string[], env: Env = process.env): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await cmdRun(rest, env);
      case 'replay':
        return await cmdReplay(rest, env);
      case 'demo':
        return await cmdDemo(env);
      case 'audit':
        return await cmdAudit(rest, env);
      case 'rules':
        return cmdRulesCheck(rest, env, (s) => process.stdout.write(s));
      case 'token':
        return cmdToken(rest, env, (s) => process.stdout.write(s));
      case 'reveal':
        return await cmdReveal(
          rest,
          env,
          (s) => process.stdout.write(s),
          (s) => process.stderr.write(s),
        );
      case 'check':
        return await cmdCheck(rest, env);
      case 'schema': {
        const which = rest[0] ?? 'record';
        if ((which !== 'record' && which !== 'erasure') || rest.length > 1)
          throw new GatewayError('GW_USAGE', 'schema takes record (default) or erasure');
        process.stdout.write(
          JSON.stringify(which === 'record' ? cdrJsonSchema() : erasureJsonSchema(), null, 2) + '\n',
        );
        return 0;
      }
      case 'subject':
        if (rest[0] === 'export') {
          return await cmdSubjectExport(rest.slice(1), env, {
            stdout: (s) => process.stdout.write(s),
            stderr: (s) => process.stderr.write(s),
            stderrIsTty: process.stderr.isTTY === true,
          });
        }
        return await cmdSubjectRights(rest[0], rest.slice(1), env, (s) => process.stdout.write(s));
      case 'tenant':
        return await cmdTenant(rest, env, (s) => process.stdout.write(s));
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return command === undefined ? 2 : 0;
      default:
        throw new GatewayError('GW_USAGE', `unknown command "${command}"`);
    }
  } catch (err) {
    // Errors are built without caller data; a foreign error prints only its class and code.
    if (err instanceof GatewayError) {
      process.stderr.write(`callveil: ${err.message} [${err.code}]\n`);
      if (err.code === 'GW_USAGE') process.stderr.write(`\n${USAGE}\n`);
      return err.code === 'GW_USAGE' ? 2 : 1;
    }
    const e = err as { name?: string; code?: string };
    process.stderr.write(`callveil: unexpected ${e.name ?? 'error'}${e.code ? ` (${e.code})` : ''}\n`);
    return 1;
  }
}
