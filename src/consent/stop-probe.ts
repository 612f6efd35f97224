// May the AMI user stop recordings? Asked without stopping anything real:
// StopMixMonitor on a channel name no channel can have. Asterisk checks the
// action's privilege (write=call or system) before it looks for the channel,
// so "No such channel" means permitted and "Permission denied" means not.
// Used at every login (the `consent` health part) and by `callveil check`.
import { actionErrorResponse, type AmiClient } from '../source/ami-client.js';
import { field } from '../source/ami-message.js';

/** No technology is called `callveil`: no channel can have this name. */
export const PROBE_CHANNEL = 'callveil/stop-permission-probe';

export type StopPermission =
  /** Asterisk looked for the channel: the user may send StopMixMonitor. */
  | 'permitted'
  /** Permission denied: the user lacks write=call. */
  | 'not-permitted'
  /** Invalid/unknown command: app_mixmonitor is not loaded (no MixMonitor recording can run either). */
  | 'no-mixmonitor'
  /** No answer, or one we do not know. */
  | 'unknown';

export async function probeStopPermission(ami: Pick<AmiClient, 'action'>): Promise<StopPermission> {
  try {
    await ami.action({ Action: 'StopMixMonitor', Channel: PROBE_CHANNEL });
    // Success for a channel that cannot exist: not an Asterisk we know.
    return 'unknown';
  } catch (err) {
    const message = field(actionErrorResponse(err) ?? {}, 'message').toLowerCase();
    if (message.includes('no such channel')) return 'permitted';
    if (message.includes('permission denied')) return 'not-permitted';
    if (message.includes('invalid/unknown command')) return 'no-mixmonitor';
    return 'unknown';
  }
}
