// `callveil run`: the live gateway, until SIGTERM or SIGINT drains it; and how
// the gateway commands load their configuration.
import { embeddedDefaults, loadConfigFile, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { startGateway } from '../main.js';
import type { Env } from './cli-command.js';

export interface RunOptions {
  readonly config?: string;
}

/** The config file, or embedded defaults (one tenant, a random key) writing to `fallbackSink`. */
export function loadConfig(file: string | undefined, env: Env, fallbackSink: Config['sink']): LoadedConfig {
  return file === undefined ? embeddedDefaults(env, fallbackSink) : loadConfigFile(file, env);
}

export function logWarnings(log: Logger, loaded: LoadedConfig): void {
  for (const w of loaded.warnings) log.warn({ config: loaded.source }, w);
}

export async function run(o: RunOptions, env: Env): Promise<number> {
  const loaded = loadConfig(o.config, env, { type: 'stdout' });
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
