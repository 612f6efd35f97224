// Time zones by canonical IANA name, from what Intl (ICU) knows.
import t from 'tap';
import {
  canonicalTimeZones,
  CLDR_LEGACY_NAMES,
  isCanonicalTimeZone,
  resolveTimeZone,
  timeZoneProblem,
} from '../../src/config/time-zone.js';

t.test('canonical names pass, whatever ICU calls them', async (t) => {
  for (const z of ['UTC', 'Europe/London', 'America/New_York', 'Asia/Kolkata', 'Europe/Kyiv', 'Etc/GMT+5'])
    t.equal(timeZoneProblem(z), undefined, z);
  t.ok(canonicalTimeZones().size > 300);
  t.ok(canonicalTimeZones().has('Asia/Kolkata') && !canonicalTimeZones().has('Asia/Calcutta'));
});

t.test('the CLDR spellings this maps are what the running Intl calls those zones', async (t) => {
  const listed = new Set(Intl.supportedValuesOf('timeZone'));
  for (const [cldr, iana] of CLDR_LEGACY_NAMES) {
    // Either ICU still reports the old spelling (then the map is needed), or it already reports the IANA name.
    const reported = new Intl.DateTimeFormat('en-US', { timeZone: iana }).resolvedOptions().timeZone;
    t.ok(reported === cldr || reported === iana, `${iana} is reported as ${reported}`);
    if (reported === cldr) t.ok(listed.has(cldr), `${cldr} is in Intl's list`);
    t.equal(resolveTimeZone(cldr), iana);
    t.ok(isCanonicalTimeZone(iana) && !isCanonicalTimeZone(cldr));
  }
});

t.test('an abbreviation or alias is refused with the zones it could mean', async (t) => {
  const bst = timeZoneProblem('BST')!;
  t.match(bst, /^a canonical IANA time zone name, not the alias or abbreviation "BST": did you mean /);
  t.match(bst, '"Europe/London"', 'British Summer Time');
  t.match(bst, '"Asia/Dhaka"', 'what ICU reads BST as (Bangladesh)');
  t.match(timeZoneProblem('EST')!, /did you mean "America\/Panama"/, 'the zone tzdata links EST to');
  t.match(timeZoneProblem('US/Eastern')!, /not the alias "US\/Eastern": did you mean "America\/New_York"\?$/);
  t.match(timeZoneProblem('Asia/Calcutta')!, /not the alias "Asia\/Calcutta": did you mean "Asia\/Kolkata"\?$/);
  t.match(timeZoneProblem('Europe/Kiev')!, /did you mean "Europe\/Kyiv"\?$/);
  t.match(timeZoneProblem('Etc/UTC')!, /did you mean "UTC"\?$/);
  t.match(timeZoneProblem('europe/london')!, /did you mean "Europe\/London"\?$/, 'case');
  t.match(timeZoneProblem('GMT')!, /did you mean "UTC"/);
});

t.test('an unknown name: the nearest canonical ones, or none', async (t) => {
  t.match(
    timeZoneProblem('Europe/Lodnon')!,
    /^an IANA time zone name such as .*, not "Europe\/Lodnon": did you mean "Europe\/London"/,
  );
  t.match(timeZoneProblem('London')!, /did you mean "Europe\/London"\?$/, 'a city without its region');
  t.match(timeZoneProblem('new york')!, /did you mean "America\/New_York"\?$/);
  t.match(timeZoneProblem('AEST')!, /\(an abbreviation\): did you mean .*"Australia\/Sydney"|"Australia\/Brisbane"/);
  t.equal(
    timeZoneProblem('Mars/Olympus'),
    'an IANA time zone name such as "Europe/London" or "UTC", not "Mars/Olympus"',
  );
});
