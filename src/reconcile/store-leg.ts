// A CDR-store row as a leg record for privacy/ (RawCdr, source `cdr-store`):
// the row's raw strings make the id tuple (so the id is the one the live Cdr
// event gave), the rules' one tenant resolution picks the tenant per call
// (Linkedid), and the party classifier places the parties from the channel
// names. Everything else the call model knows from channel events (consent
// outcome, who answered behind a queue, the DID of an inbound call) the store
// does not hold, and the record does not claim.
import { createPartyClassifier, type ChannelRole, type PartyClassifier } from '../assemble/party-classifier.js';
import { pbxTimeToIso } from '../assemble/pbx-time.js';
import type { Direction, RawCdr } from '../assemble/raw-cdr.js';
import { RawValues, type RecentRawValues } from '../egress/raw-values.js';
import { recordIdOf, type CdrIdTuple } from '../privacy/ids.js';
import type { PrivacyRules } from '../privacy/tenants.js';
import type { MasterRow } from './master-csv.js';

export interface StoreLegOptions {
  /** The rules in force (a hot-reload view is read once per row). */
  readonly rules: () => Pick<PrivacyRules, 'resolveMatch' | 'tenants' | 'callModel'>;
  /** IANA zone Asterisk wrote the times in (pbx.timeZone). */
  readonly timeZone: string;
  /** Where every raw value is also remembered (the egress guard's recent values). */
  readonly recent?: RecentRawValues;
}

export interface StoreLegs {
  /**
   * The tenant of a call from its rows (caller's row first): the first row the
   * rules resolve decisively (accountcode, context, extension, peer), else
   * the default tenant. One answer for all its rows.
   */
  tenantOf(rows: readonly MasterRow[]): string | undefined;
  /** The row's leg record; undefined when a time cannot be read. `replacesGap`: it replaces that placeholder. */
  leg(row: MasterRow, tenant: string | undefined, replacesGap?: boolean): RawCdr | undefined;
  /** The keyed record id the row's record gets in `tenant` (null: unknown tenant or no id key). */
  idOf(row: MasterRow, tenant: string | undefined): string | null;
}

/** The raw strings a record id is made of (src/privacy/ids.ts): the same columns the Cdr event carries. */
export function idTupleOfRow(row: MasterRow): CdrIdTuple {
  return {
    uniqueId: row.uniqueid,
    start: row.start,
    answer: row.answer,
    end: row.end,
    duration: row.duration,
    billsec: row.billsec,
    disposition: row.disposition,
    dstChannel: row.dstchannel,
    lastApp: row.lastapp,
  };
}

/** The call a row belongs to: its linkedid (newcdrcolumns=yes), else its own uniqueid. */
export function callOfRow(row: MasterRow): string {
  return row.linkedid !== '' ? row.linkedid : row.uniqueid;
}

/** The name part of a CDR clid (`"Alice Example" <1001>`); '' when there is none. Raw. */
function clidName(clid: string): string {
  const lt = clid.lastIndexOf('<');
  const name = (lt >= 0 ? clid.slice(0, lt) : '').trim();
  return name.startsWith('"') && name.endsWith('"') && name.length >= 2 ? name.slice(1, -1) : name;
}

function directionOf(a: ChannelRole, b: ChannelRole | undefined): Direction {
  const incoming = a === 'trunk';
  const dialled = b === 'trunk';
  return incoming && dialled ? 'transit' : incoming ? 'inbound' : dialled ? 'outbound' : 'internal';
}

/** Every raw value of a row, for the egress guard: numbers, the clid name, dial strings, channel names, ids. */
export function rawValuesOfRow(row: MasterRow, recent?: RecentRawValues): RawValues {
  const raw = new RawValues(recent);
  for (const v of [row.src, row.dst, row.clid, row.channel, row.dstchannel, row.lastdata, row.uniqueid, row.linkedid])
    raw.addNumber(v);
  raw.addName(clidName(row.clid));
  return raw;
}

export function createStoreLegs(opts: StoreLegOptions): StoreLegs {
  const classifier: PartyClassifier = createPartyClassifier(() => opts.rules().callModel.partyRules);

  function resolveRow(row: MasterRow, account: string) {
    return opts.rules().resolveMatch({
      accountCode: account,
      tenantHint: '',
      destinationContext: row.dcontext,
      dialled: '',
      source: row.src,
      destination: '',
      channel: row.channel,
    });
  }

  return {
    tenantOf(rows) {
      let fallback: string | undefined;
      for (const row of rows) {
        // Not peeraccount: the callee's account says nothing of whose call it is (the live path agrees).
        const r = resolveRow(row, row.accountcode);
        if (r === undefined) continue;
        if (r.by !== 'default') return r.policy.id;
        fallback ??= r.policy.id;
      }
      return fallback;
    },
    idOf(row, tenant) {
      const p = tenant === undefined ? undefined : opts.rules().tenants.get(tenant);
      if (p === undefined || p.idKey === null) return null;
      return recordIdOf(p.idKey, p.id, idTupleOfRow(row));
    },
    leg(row, tenant, replacesGap = false) {
      const startedAt = pbxTimeToIso(row.start, opts.timeZone);
      const endedAt = pbxTimeToIso(row.end, opts.timeZone);
      const answeredAt = row.answer === '' ? null : pbxTimeToIso(row.answer, opts.timeZone);
      if (startedAt === null || endedAt === null || (row.answer !== '' && answeredAt === null)) return undefined;
      const aRole = classifier.channelRole(row.channel);
      const bRole = row.dstchannel === '' ? undefined : classifier.channelRole(row.dstchannel);
      const queue = row.lastapp === 'Queue' ? row.lastdata.split(',')[0] : undefined;
      return {
        // An unresolved tenant stays unresolved: privacy withholds the record (unknown-tenant).
        tenant: tenant ?? '',
        raw: rawValuesOfRow(row, opts.recent),
        legId: row.uniqueid,
        callId: callOfRow(row),
        idTuple: idTupleOfRow(row),
        lastApp: row.lastapp,
        tenantHint: '',
        accountCode: row.accountcode,
        source: row.src,
        destination: row.dst,
        // Inbound calls run through `s`: the DID is not in the store.
        dialled: row.dst === 's' ? '' : row.dst,
        destinationContext: row.dcontext,
        channel: row.channel,
        callerName: clidName(row.clid),
        callerWhere: classifier.whereOn(aRole),
        calleeWhere: bRole === undefined ? 'internal' : classifier.whereOn(bRole),
        direction: directionOf(aRole, bRole),
        ...(queue === undefined || queue === '' ? {} : { queue }),
        recordSource: 'cdr-store',
        disposition: row.disposition,
        durationSec: Number(row.duration),
        billSec: Number(row.billsec),
        startedAt,
        answeredAt,
        endedAt,
        ...(replacesGap ? { replacesGap: row.uniqueid } : {}),
      };
    },
  };
}
