// After a reconnect, ask Asterisk which channels are up (CoreShowChannels), so
// the assembler can tell calls still running from calls that ended unseen.
import { GatewayError } from '../errors.js';
import { field, type AmiMessage } from './ami-message.js';
import type { AmiClient } from './ami-client.js';

export interface ChannelLister {
  /** Uniqueids of the channels Asterisk has now. */
  list(timeoutMs: number): Promise<Set<string>>;
}

interface Listing {
  readonly ids: Set<string>;
  complete: boolean;
  done?: () => void;
}

// List items can arrive in the same read as the response, before the code
// awaiting the response runs: they are collected by ActionID as they come.
const MAX_LISTINGS = 16;

export function createChannelLister(client: Pick<AmiClient, 'action' | 'onMessage'>): ChannelLister {
  const listings = new Map<string, Listing>();
  const listing = (id: string): Listing => {
    let l = listings.get(id);
    if (l === undefined) {
      if (listings.size >= MAX_LISTINGS) listings.delete(listings.keys().next().value!);
      listings.set(id, (l = { ids: new Set(), complete: false }));
    }
    return l;
  };
  client.onMessage((msg: AmiMessage) => {
    const event = field(msg, 'event');
    if (event === 'CoreShowChannel') listing(field(msg, 'actionid')).ids.add(field(msg, 'uniqueid'));
    else if (event === 'CoreShowChannelsComplete') {
      const l = listing(field(msg, 'actionid'));
      l.complete = true;
      l.done?.();
    }
  });
  return {
    async list(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      let actionId = '';
      try {
        return await new Promise<Set<string>>((resolve, reject) => {
          timer = setTimeout(
            () =>
              reject(new GatewayError('GW_AMI_TIMEOUT', `CoreShowChannels did not complete within ${timeoutMs} ms`)),
            timeoutMs,
          );
          client.action({ Action: 'CoreShowChannels' }).then((response) => {
            actionId = field(response, 'actionid');
            const l = listing(actionId);
            if (l.complete) resolve(l.ids);
            else l.done = () => resolve(l.ids);
          }, reject);
        });
      } finally {
        clearTimeout(timer);
        listings.delete(actionId);
      }
    },
  };
}
