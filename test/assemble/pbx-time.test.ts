import t from 'tap';
import { pbxTimeToIso } from '../../src/assemble/pbx-time.js';

t.test('wall clock in the PBX zone becomes ISO UTC', async (t) => {
  const table: Array<[string, string, string | null]> = [
    ['2026-11-18 10:12:20', 'UTC', '2026-11-18T10:12:20.000Z'],
    ['2026-07-01 10:00:00', 'Europe/London', '2026-07-01T09:00:00.000Z'],
    ['2026-11-18 10:00:00', 'Europe/London', '2026-11-18T10:00:00.000Z'],
    ['2026-11-18 10:00:00', 'America/New_York', '2026-11-18T15:00:00.000Z'],
    ['2026-03-29 03:30:00', 'Europe/Berlin', '2026-03-29T01:30:00.000Z'],
    ['', 'UTC', null],
    ['18/11/2026 10:00', 'UTC', null],
    ['2026-13-45 99:99:99', 'UTC', null],
  ];
  for (const [wall, tz, want] of table) t.equal(pbxTimeToIso(wall, tz), want, `${wall} ${tz}`);
});
