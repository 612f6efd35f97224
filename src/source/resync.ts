// After a (re)connect, ask Asterisk what is going on: which channels are up
// (CoreShowChannels), so the call model can tell calls still running from
// calls that ended unseen; and which of them are recording (Status with
// `Variables: MIXMONITOR_FILENAME,...`), so consent enforcement judges
// recordings that started before the gateway connected. Both are list
// actions: a response, the items as events, then a Complete event.
import { GatewayError } from '../errors.js';
import { field, type AmiMessage } from './ami-message.js';
import type { AmiClient } from './ami-client.js';

export interface ChannelLister {
  /** Uniqueids of the channels Asterisk has now. */
  list(timeoutMs: number): Promise<Set<string>>;
}

export interface RecordingLister {
  /**
   * Uniqueid -> MIXMONITOR_FILENAME of every channel that has one set (the
   * call model has seen every Status item, with its bridge and target
   * variables, before this resolves). Raw: memory only.
   */
  list(timeoutMs: number): Promise<Map<string, string>>;
}

/**
 * The variables a Status listing asks for: the recording's file name (set by
 * MixMonitor, still set after it stopped) and the dialplan targets consent
 * reads (`TARGET_EXT` also finds an inherited `__TARGET_EXT`).
 */
export const STATUS_VARIABLES = 'MIXMONITOR_FILENAME,TARGET_EXT,TARGET';

interface Listing<T> {
  readonly items: T;
  complete: boolean;
  done?: () => void;
}

// List items can arrive in the same read as the response, before the code
// awaiting the response runs: they are collected by ActionID as they come.
const MAX_LISTINGS = 16;

export function listCollector<T>(
  client: Pick<AmiClient, 'action' | 'onMessage'>,
  spec: {
    readonly action: Record<string, string>;
    readonly item: string;
    readonly complete: string;
    readonly empty: () => T;
    readonly add: (items: T, msg: AmiMessage) => void;
  },
): (timeoutMs: number) => Promise<T> {
  const listings = new Map<string, Listing<T>>();
  const listing = (id: string): Listing<T> => {
    let l = listings.get(id);
    if (l === undefined) {
      if (listings.size >= MAX_LISTINGS) listings.delete(listings.keys().next().value!);
      listings.set(id, (l = { items: spec.empty(), complete: false }));
    }
    return l;
  };
  client.onMessage((msg: AmiMessage) => {
    const event = field(msg, 'event');
    if (event === spec.item) spec.add(listing(field(msg, 'actionid')).items, msg);
    else if (event === spec.complete) {
      const l = listing(field(msg, 'actionid'));
      l.complete = true;
      l.done?.();
    }
  });
  return async (timeoutMs) => {
    let timer: NodeJS.Timeout | undefined;
    let actionId = '';
    const name = spec.action['Action'] ?? 'list';
    try {
      return await new Promise<T>((resolve, reject) => {
        timer = setTimeout(
          () => reject(new GatewayError('GW_AMI_TIMEOUT', `${name} did not complete within ${timeoutMs} ms`)),
          timeoutMs,
        );
        client.action(spec.action).then((response) => {
          actionId = field(response, 'actionid');
          const l = listing(actionId);
          if (l.complete) resolve(l.items);
          else l.done = () => resolve(l.items);
        }, reject);
      });
    } finally {
      clearTimeout(timer);
      listings.delete(actionId);
    }
  };
}

export function createChannelLister(client: Pick<AmiClient, 'action' | 'onMessage'>): ChannelLister {
  return {
    list: listCollector(client, {
      action: { Action: 'CoreShowChannels' },
      item: 'CoreShowChannel',
      complete: 'CoreShowChannelsComplete',
      empty: () => new Set<string>(),
      add: (ids, msg) => void ids.add(field(msg, 'uniqueid')),
    }),
  };
}

/** The value of one `Variable: NAME=value` header of a Status item; '' when absent or empty. */
export function statusVariable(msg: AmiMessage, name: string): string {
  const v = msg['variable'];
  for (const entry of v === undefined ? [] : typeof v === 'string' ? [v] : v)
    if (entry.startsWith(`${name}=`)) return entry.slice(name.length + 1);
  return '';
}

/**
 * Status, not CoreShowChannels: only Status reports channel variables, and
 * the least-rights user may send it (its classes are system, call or
 * reporting; the user has write=call,reporting). One action for all
 * channels, answered the same way by Asterisk 20 and 22.
 */
export function createRecordingLister(client: Pick<AmiClient, 'action' | 'onMessage'>): RecordingLister {
  return {
    list: listCollector(client, {
      action: { Action: 'Status', Variables: STATUS_VARIABLES },
      item: 'Status',
      complete: 'StatusComplete',
      empty: () => new Map<string, string>(),
      add: (running, msg) => {
        const file = statusVariable(msg, 'MIXMONITOR_FILENAME');
        const uniqueId = field(msg, 'uniqueid');
        if (file !== '' && uniqueId !== '') running.set(uniqueId, file);
      },
    }),
  };
}
