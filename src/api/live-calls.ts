// Call lifecycle frames for the live feed (started, answered, ended), built
// from channel events without copying any AMI value: a frame holds its type,
// the call's Asterisk Linkedid (validated, as in records) and the gateway's
// clock. A call belongs to the tenant its originating channel is tagged with
// (accountcode, then tenantid); until it is tagged nothing is sent, so one
// tenant never sees another's call. Untagged calls fall back to the default
// tenant when they end.
import { LRUCache } from 'lru-cache';
import { isUsableId } from '../assemble/asterisk-id.js';
import { callIdOf } from '../privacy/ids.js';
import { field, type AmiMessage } from '../source/ami-message.js';
import type { LiveFrame } from './live-feed.js';

type TenantOf = (
  tenantHint: string,
  accountCode: string,
) => { readonly id: string; readonly idKey: Buffer | null } | undefined;

type Tenant = NonNullable<ReturnType<TenantOf>>;

export interface LiveCallTrackerOptions {
  /** Explicit matches only (no default tenant). */
  readonly resolveTagged: TenantOf;
  /** Used once, when an untagged call ends. */
  readonly defaultTenant?: Tenant | undefined;
  readonly maxCalls?: number;
  readonly now?: () => Date;
}

export interface TenantFrame {
  readonly tenant: string;
  readonly frame: LiveFrame;
}

interface Call {
  tenant: Tenant | undefined;
  readonly startedAt: string;
  answeredAt: string | undefined;
  announced: { started: boolean; answered: boolean };
}

export function createLiveCallTracker(opts: LiveCallTrackerOptions): { handle(msg: AmiMessage): TenantFrame[] } {
  const now = opts.now ?? (() => new Date());
  const calls = new LRUCache<string, Call>({ max: opts.maxCalls ?? 50_000 });

  /** Frames carry the call id its records carry (keyed); a tenant without an id key gets none. */
  function announce(linkedId: string, call: Call, out: TenantFrame[], ended?: string): void {
    const tenant = call.tenant!;
    if (tenant.idKey === null) return;
    const callId = callIdOf(tenant.idKey, tenant.id, linkedId);
    if (!call.announced.started) {
      call.announced.started = true;
      out.push({ tenant: tenant.id, frame: { type: 'call.started', callId, at: call.startedAt } });
    }
    if (call.answeredAt !== undefined && !call.announced.answered) {
      call.announced.answered = true;
      out.push({ tenant: tenant.id, frame: { type: 'call.answered', callId, at: call.answeredAt } });
    }
    if (ended !== undefined) out.push({ tenant: tenant.id, frame: { type: 'call.ended', callId, at: ended } });
  }

  return {
    handle(msg) {
      const event = field(msg, 'event');
      if (event === '' || event === 'Cdr' || event === 'CEL') return [];
      const uniqueId = field(msg, 'uniqueid');
      const linkedId = field(msg, 'linkedid');
      if (uniqueId === '' || !isUsableId(linkedId)) return [];
      const out: TenantFrame[] = [];
      let call = calls.get(linkedId);
      if (call === undefined) {
        if (event === 'Hangup') return [];
        call = {
          tenant: undefined,
          startedAt: now().toISOString(),
          answeredAt: undefined,
          announced: { started: false, answered: false },
        };
        calls.set(linkedId, call);
      }
      const originating = uniqueId === linkedId;
      if (call.tenant === undefined && originating)
        call.tenant = opts.resolveTagged(field(msg, 'tenantid'), field(msg, 'accountcode'));
      if (event === 'Newstate' && field(msg, 'channelstatedesc') === 'Up' && call.answeredAt === undefined)
        call.answeredAt = now().toISOString();
      if (event === 'Hangup' && originating) {
        calls.delete(linkedId);
        call.tenant ??= opts.defaultTenant;
        if (call.tenant === undefined) return [];
        announce(linkedId, call, out, now().toISOString());
        return out;
      }
      if (call.tenant !== undefined) announce(linkedId, call, out);
      return out;
    },
  };
}
