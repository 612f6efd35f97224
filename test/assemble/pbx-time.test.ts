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

t.test(
  'a time converted again, or in another zone in between, gives the same answer (the conversion cache)',
  async (t) => {
    const wall = '2026-07-01 10:00:00';
    for (let round = 0; round < 3; round++) {
      t.equal(pbxTimeToIso(wall, 'Europe/London'), '2026-07-01T09:00:00.000Z', `London, round ${round}`);
      t.equal(pbxTimeToIso(wall, 'America/New_York'), '2026-07-01T14:00:00.000Z', `New York, round ${round}`);
      t.equal(pbxTimeToIso('2026-02-30 10:00:00', 'UTC'), null, `a malformed time stays null, round ${round}`);
    }
    // More distinct times than the cache keeps: each still right.
    for (let s = 0; s < 5000; s++) {
      const hh = String(Math.floor(s / 3600)).padStart(2, '0');
      const mm = String(Math.floor(s / 60) % 60).padStart(2, '0');
      const ss = String(s % 60).padStart(2, '0');
      const got = pbxTimeToIso(`2026-11-18 ${hh}:${mm}:${ss}`, 'UTC');
      if (got !== `2026-11-18T${hh}:${mm}:${ss}.000Z`) t.fail(`second ${s}: ${got}`);
    }
    t.equal(pbxTimeToIso('2026-11-18 00:00:01', 'UTC'), '2026-11-18T00:00:01.000Z', 'after the cache was cleared');
  },
);
