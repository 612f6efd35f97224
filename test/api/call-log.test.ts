// The console's call log: bounded, newest first, counts per extension and per
// hour in the tenant's time zone, the enforcer's reason joined to its call.
import t from 'tap';
import { callExtensions, createCallLog, localDayHour } from '../../src/api/call-log.js';
import type { CallRecord } from '../../src/privacy/call-record.js';

const ext = (extension: string | undefined, token: string | null = null) => ({
  kind: 'extension' as const,
  ...(extension === undefined ? {} : { extension }),
  token,
  country: null,
  callingCode: null,
  numberType: null,
});
const sub = { kind: 'e164' as const, token: 'tok-subscriber-aaaa', country: 'GB', callingCode: '44', numberType: null };

let n = 0;
function record(o: Partial<CallRecord> = {}): CallRecord {
  const id = 'abcdefghijklmnop'.repeat(2).slice(0, 31) + 'abcdefghijklmnop'[n++ % 16];
  return {
    schemaVersion: 1,
    id,
    tenant: 'acme',
    keyId: 'k1',
    callId: id,
    direction: 'inbound',
    startedAt: '2026-07-01T22:30:00.000Z',
    answeredAt: null,
    endedAt: '2026-07-01T22:31:00.000Z',
    ringSec: 4,
    talkSec: 0,
    outcome: 'no-answer',
    firstCalled: ext('1001'),
    answeredBy: null,
    queue: null,
    transfers: [],
    recording: 'none',
    legIds: [],
    complete: true,
    source: 'ami',
    ...o,
  };
}

t.test('local day and hour follow the time zone, DST included', async (t) => {
  t.same(localDayHour('2026-07-01T22:30:00.000Z', 'Europe/London'), { date: '2026-07-01', hour: 23 });
  t.same(localDayHour('2026-07-01T23:30:00.000Z', 'Europe/London'), { date: '2026-07-02', hour: 0 });
  t.same(localDayHour('2026-01-01T23:30:00.000Z', 'Europe/London'), { date: '2026-01-01', hour: 23 });
  t.same(localDayHour('2026-07-01T03:00:00.000Z', 'America/New_York'), { date: '2026-06-30', hour: 23 });
});

t.test('internal parties: extension or token, once each; a redacted one is left out', async (t) => {
  t.same(
    callExtensions(
      record({
        caller: sub,
        firstCalled: ext('1001'),
        answeredBy: ext('1001'),
        transfers: [{ kind: 'blind', at: null, from: ext('1001'), to: ext(undefined, 'tokenOf1003xxxxxx') }],
      }),
    ),
    ['1001', 'tokenOf1003xxxxxx'],
  );
  t.same(callExtensions(record({ firstCalled: ext(undefined) })), [], 'method redact: nothing to show');
});

t.test('bounded, newest first, counted per extension and hour', async (t) => {
  const log = createCallLog({ maxCallsPerTenant: 3, timeZoneOf: () => 'Europe/London' });
  const times = [
    '2026-07-01T08:00:00.000Z',
    '2026-07-01T09:10:00.000Z',
    '2026-07-01T09:20:00.000Z',
    '2026-07-01T22:30:00.000Z',
  ];
  log.noteRecording({ tenant: 'acme', callId: null, reason: 'no-consent' });
  const entries = times.map((startedAt, i) => {
    const r = record({
      startedAt,
      outcome: i === 0 ? 'busy' : i % 2 ? 'answered' : 'cancelled',
      answeredBy: i % 2 ? ext('1001') : null,
      recording: i === 1 ? 'blocked' : i === 3 ? 'kept' : 'none',
    });
    if (i === 1) log.noteRecording({ tenant: 'acme', callId: r.callId, reason: 'no-consent' });
    return log.add(r);
  });
  t.equal(entries[1]!.recordingReason, 'no-consent');
  t.equal(entries[3]!.recordingReason, null, 'no reason seen: null');
  const recent = log.recent('acme');
  t.equal(recent.length, 3, 'the oldest is forgotten');
  t.same(
    recent.map((e) => e.record.startedAt),
    [times[3], times[2], times[1]],
  );
  t.same(log.recent('globex'), []);
  const a = log.activity('acme');
  t.equal(a.timeZone, 'Europe/London');
  t.same(
    a.extensions,
    [{ extension: '1001', calls: 4, answered: 2, kept: 1, blocked: 1, prevented: 0 }],
    'counts outlive the buffer',
  );
  const day = a.days.find((d) => d.date === '2026-07-01')!;
  t.match(day.hours[9], { hour: 9, answered: 0, missed: 0, other: 1 }, 'busy at 09 BST');
  t.match(day.hours[10], { hour: 10, answered: 1, missed: 1, blocked: 1 });
  t.match(day.hours[23], { hour: 23, answered: 1, kept: 1 });
  t.same(log.activity('globex').days, []);
});

t.test('at most seven days are kept', async (t) => {
  const log = createCallLog({ timeZoneOf: () => 'UTC' });
  for (let d = 1; d <= 9; d++) log.add(record({ startedAt: `2026-07-0${d}T12:00:00.000Z` }));
  t.same(
    log.activity('acme').days.map((d) => d.date),
    ['2026-07-09', '2026-07-08', '2026-07-07', '2026-07-06', '2026-07-05', '2026-07-04', '2026-07-03'],
  );
});
