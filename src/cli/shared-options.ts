// Options (and one sentence) several commands share, worded once.
import { Option } from 'commander';
import { optionalOption } from './cli-command.js';

const CONFIG = 'the configuration file (YAML or JSON)';

/** `--config <file>`, required. */
export function configOption(): Option {
  return new Option('--config <file>', CONFIG).makeOptionMandatory();
}

/** `--config <file>` for commands that run without one (run, replay). */
export function optionalConfigOption(): Option {
  return optionalOption(
    '--config <file>',
    CONFIG,
    'embedded defaults: one tenant "default", a key random for this run',
  );
}

export function tenantOption(): Option {
  return new Option('--tenant <tenant>', "the tenant's id in the rules").makeOptionMandatory();
}

export function reasonOption(): Option {
  return optionalOption(
    '--reason <text>',
    'why, for the audit log: a ticket reference, no phone number (at most 200 characters)',
    'none recorded',
  );
}

/** Said by every command that changes the state dir. */
export const STOPPED =
  'Changes the state dir: run it while the gateway is stopped (a running gateway holds the lock; use its tenant API).';
