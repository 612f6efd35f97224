// The ids a Master.csv row's record must carry, computed from the row alone
// (Asterisk's own CDR store) with the tenant's id key: the join key between
// ground truth and what the gateway published, now that no raw Asterisk id
// leaves the gateway.
import type { LoadedConfig } from '../../src/config/load.js';
import { callIdOf, legIdOf, recordIdOf, type CdrIdTuple } from '../../src/privacy/ids.js';
import type { MasterCsvRow } from './ground-truth.js';

export function idTupleOfRow(row: MasterCsvRow): CdrIdTuple {
  return {
    uniqueId: row.uniqueid,
    start: row.start,
    answer: row.answer,
    end: row.end,
    duration: String(row.duration),
    billsec: String(row.billsec),
    disposition: row.disposition,
    dstChannel: row.dstchannel,
    lastApp: row.lastapp,
  };
}

export interface RowIds {
  readonly id: string;
  readonly callId: string;
  readonly legId: string;
}

/** The row's ids under `tenant`'s id key in `loaded` (throws when the tenant has none: a test setup error). */
export function idsOfRow(loaded: Pick<LoadedConfig, 'privacy'>, tenant: string, row: MasterCsvRow): RowIds {
  const idKey = loaded.privacy.tenants.get(tenant)?.idKey;
  if (idKey === undefined || idKey === null) throw new Error(`tenant ${tenant} has no id key in this config`);
  return {
    id: recordIdOf(idKey, tenant, idTupleOfRow(row)),
    callId: callIdOf(idKey, tenant, row.linkedid),
    legId: legIdOf(idKey, tenant, row.uniqueid),
  };
}
