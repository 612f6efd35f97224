// The dialplan gate's decisions (docker/asterisk/extensions-callveil.conf
// emits `UserEvent(CallveilGate, Verdict: started|prevented, ...)`): a
// recording the gate did not start makes the call's records say
// `recording: "prevented"`. Needs the AMI user to read class `user`.
import type { CallModel } from '../assemble/call-model.js';
import type { AmiClient } from '../source/ami-client.js';
import { field } from '../source/ami-message.js';

export const GATE_EVENT = 'CallveilGate';

export interface GateEventStats {
  readonly prevented: number;
  readonly started: number;
}

export function watchGateEvents(
  client: Pick<AmiClient, 'onMessage'>,
  model: Pick<CallModel, 'markRecording'>,
): { stats(): GateEventStats } {
  const stats = { prevented: 0, started: 0 };
  client.onMessage((msg) => {
    if (field(msg, 'event') !== 'UserEvent' || field(msg, 'userevent') !== GATE_EVENT) return;
    const verdict = field(msg, 'verdict');
    if (verdict === 'started') stats.started++;
    if (verdict !== 'prevented') return;
    stats.prevented++;
    // The call model keys calls by Linkedid, as the enforcer marks them.
    const callId = field(msg, 'linkedid') || field(msg, 'uniqueid');
    if (callId !== '') model.markRecording(callId, 'prevented');
  });
  return { stats: () => ({ ...stats }) };
}
