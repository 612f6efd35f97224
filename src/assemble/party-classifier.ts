// Who a party is, decided in one place from where the party is, never from
// how many digits it has: a number on a trunk channel is an external party
// whatever its length (caller `4001` on `SIP/trunk-…`), a number on a phone
// channel is internal. The sanitiser, consent enforcement and the live feed
// all ask this classifier (through the call model).
//
// A channel is:
//   local  - one half of a Local channel pair (never a party itself);
//   trunk  - a peer or context the rules name as a trunk (`trunks:`), a peer
//            the PBX was seen dialling a number through (`trunk/0770…`,
//            `0770…@trunk`), a DAHDI line, or, without rules saying
//            otherwise, a peer/context named like one (DEFAULT_TRUNK_*);
//   phone  - any other endpoint channel (SIP, PJSIP, IAX2, ...).
import { compileGlob } from '../privacy/number-sets.js';
import { parseChannelName, trunkOfDialString } from './channel-name.js';

export type ChannelRole = 'phone' | 'trunk' | 'local' | 'none';
/** Where a party sits: on the PBX's own side (internal) or beyond a trunk (external). */
export type PartyWhere = 'internal' | 'external';

/** Names that mean "trunk" on most PBXs; the rules' `trunks:` replace them (README "Parties and trunks"). */
export const DEFAULT_TRUNK_PEERS = [
  'trunk',
  'trunk[-_]*',
  '*[-_]trunk',
  '*[-_]trunk[-_]*',
  'pstn*',
  'carrier*',
  'provider*',
  'itsp*',
  'sbc*',
] as const;
export const DEFAULT_TRUNK_CONTEXTS = [
  'from-trunk*',
  'from-pstn*',
  'from-carrier*',
  'from-provider*',
  'from-external*',
  'from-itsp*',
  'from-did*',
] as const;

/** What the rules say about trunks and phones (compiled; hot reload swaps the whole object). */
export interface PartyRules {
  /** Trunk peers/contexts named by any tenant's rules; empty lists: the defaults apply. */
  readonly trunkPeers: readonly RegExp[];
  readonly trunkContexts: readonly RegExp[];
  /** Phone peers named by any tenant's rules (`match.peers`): always phones, never trunks. */
  readonly phonePeers: readonly RegExp[];
}

export const NO_PARTY_RULES: PartyRules = Object.freeze({ trunkPeers: [], trunkContexts: [], phonePeers: [] });

const DEFAULT_PEERS = DEFAULT_TRUNK_PEERS.map(compileGlob);
const DEFAULT_CONTEXTS = DEFAULT_TRUNK_CONTEXTS.map(compileGlob);
const MAX_LEARNT = 1000;

export interface PartyClassifier {
  /** The role of a channel by its name and (when known) the context it was created in. */
  channelRole(name: string, context?: string): ChannelRole;
  /** A dial string (DialBegin DialString): a number dialled through a peer makes that peer a trunk. */
  learnDialString(dialString: string): void;
  /** Where a party on a channel of this role is. */
  whereOn(role: ChannelRole): PartyWhere;
}

export function createPartyClassifier(rules: () => PartyRules): PartyClassifier {
  const learnt = new Set<string>();
  const matches = (list: readonly RegExp[], v: string) => v !== '' && list.some((re) => re.test(v));

  return {
    channelRole(name, context = '') {
      const c = parseChannelName(name);
      if (c.tech === '') return 'none';
      if (c.local !== undefined || c.tech === 'Local') return 'local';
      const r = rules();
      if (matches(r.trunkPeers, c.peer) || matches(r.trunkContexts, context)) return 'trunk';
      if (matches(r.phonePeers, c.peer)) return 'phone';
      if (c.tech === 'DAHDI' || learnt.has(`${c.tech}/${c.peer}`) || learnt.has(`*/${c.peer}`)) return 'trunk';
      // The defaults stand in only where the rules name no trunks at all.
      if (r.trunkPeers.length === 0 && r.trunkContexts.length === 0) {
        if (matches(DEFAULT_PEERS, c.peer) || matches(DEFAULT_CONTEXTS, context)) return 'trunk';
      }
      return 'phone';
    },
    learnDialString(dialString) {
      const peer = trunkOfDialString(dialString);
      if (peer === undefined || peer === '' || learnt.size >= MAX_LEARNT) return;
      learnt.add(`*/${peer}`);
    },
    whereOn: (role) => (role === 'trunk' ? 'external' : 'internal'),
  };
}
