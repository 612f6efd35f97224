// Hot reload of the rules folder and keys file. A new set is validated as a
// whole first; only then is the one immutable PrivacyRules object swapped. A
// failed reload keeps the old set, logs the problem count (never a value) and
// calls onFailed (the seam for a metric).
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../observability/logger.js';
import type { PrivacyRules, TenantPolicy, TenantResolver } from '../privacy/tenants.js';
import type { RulesResult } from './load.js';

export type ReloadTrigger = 'sighup' | 'file-change' | 'manual';

export interface RulesHolder {
  /** The rules in force now. */
  current(): PrivacyRules & TenantResolver;
  /**
   * A stable object that delegates to the rules in force: each resolve reads
   * the current set once and returns a self-contained policy from it.
   */
  readonly view: PrivacyRules & TenantResolver;
  /** Validates the files again and swaps on success; false (old set kept) on any problem. */
  reload(trigger: ReloadTrigger): boolean;
  stats(): { readonly reloads: number; readonly failures: number };
}

export interface RulesHolderOptions {
  readonly initial: PrivacyRules & TenantResolver;
  readonly load: () => RulesResult;
  readonly log: Pick<Logger, 'info' | 'error'>;
  /** Seam for metrics: e.g. metrics.counter('rules_reload_failures_total').inc({ trigger }). */
  readonly onFailed?: (trigger: ReloadTrigger, problems: number) => void;
  readonly onReloaded?: (trigger: ReloadTrigger, tenants: number) => void;
}

export function createRulesHolder(opts: RulesHolderOptions): RulesHolder {
  let rules = opts.initial;
  let reloads = 0;
  let failures = 0;
  const view = Object.assign(
    (tenantHint: string, accountCode: string): TenantPolicy | undefined => rules(tenantHint, accountCode),
    {
      get tenants() {
        return rules.tenants;
      },
      get defaultTenant() {
        return rules.defaultTenant;
      },
      resolve: (raw: Parameters<PrivacyRules['resolve']>[0]) => rules.resolve(raw),
      resolveMatch: (raw: Parameters<PrivacyRules['resolve']>[0]) => rules.resolveMatch(raw),
      get callModel() {
        return rules.callModel;
      },
    },
  ) as PrivacyRules & TenantResolver;
  return {
    current: () => rules,
    view,
    reload(trigger) {
      let result: RulesResult;
      try {
        result = opts.load();
      } catch (err) {
        result = {
          ok: false,
          problems: [
            {
              file: '(rules)',
              path: '(top level)',
              message: `expected a loadable rules folder (${(err as { code?: string }).code ?? 'error'})`,
            },
          ],
        };
      }
      if (!result.ok) {
        failures++;
        // Files and paths only: `callveil rules check` prints the details.
        opts.log.error(
          {
            component: 'rules',
            trigger,
            problems: result.problems.length,
            files: [...new Set(result.problems.map((p) => p.file))],
          },
          'rules reload failed: the previous rules stay in force',
        );
        opts.onFailed?.(trigger, result.problems.length);
        return false;
      }
      rules = result.loaded.rules;
      reloads++;
      opts.log.info({ component: 'rules', trigger, tenants: rules.tenants.size }, 'rules reloaded');
      opts.onReloaded?.(trigger, rules.tenants.size);
      return true;
    },
    stats: () => ({ reloads, failures }),
  };
}

/** Reloads on SIGHUP and (debounced) on changes in the rules folder or keys file. Returns a stop function. */
export function watchRules(holder: RulesHolder, paths: readonly string[], debounceMs = 250): () => void {
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      holder.reload('file-change');
    }, debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const p of paths) {
    try {
      const w = watch(p, { persistent: false }, schedule);
      w.on('error', () => undefined);
      watchers.push(w);
    } catch {
      // A path that cannot be watched still reloads on SIGHUP.
    }
  }
  const onHup = () => void holder.reload('sighup');
  process.on('SIGHUP', onHup);
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
    process.off('SIGHUP', onHup);
  };
}
