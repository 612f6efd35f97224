// Time zones by their canonical IANA names. Intl (ICU, with the tz database
// Node ships) knows every zone and every alias, and resolves an alias to the
// zone it stands for: BST to Asia/Dhaka, EST to America/Panama, US/Eastern to
// America/New_York. Accepting an alias silently is how `BST` put a London PBX
// six hours off, so only a zone's own name passes; an alias is refused with
// the zone it resolves to and the zones that show that abbreviation.
//
// ICU still calls a few zones by CLDR's older spelling (Asia/Calcutta for
// Asia/Kolkata, Europe/Kiev for Europe/Kyiv): IANA_NAMES maps those to the
// names the tz database uses. This is the list TC39's time zone
// canonicalization proposal names; test/config/time-zone.test.ts checks it
// against the running Intl, so a Node that already reports the IANA name
// needs no change.
import { closest, orList } from './suggest.js';

const IANA_NAMES: Readonly<Record<string, string>> = {
  'Africa/Asmera': 'Africa/Asmara',
  'America/Buenos_Aires': 'America/Argentina/Buenos_Aires',
  'America/Catamarca': 'America/Argentina/Catamarca',
  'America/Coral_Harbour': 'America/Atikokan',
  'America/Cordoba': 'America/Argentina/Cordoba',
  'America/Godthab': 'America/Nuuk',
  'America/Indianapolis': 'America/Indiana/Indianapolis',
  'America/Jujuy': 'America/Argentina/Jujuy',
  'America/Louisville': 'America/Kentucky/Louisville',
  'America/Mendoza': 'America/Argentina/Mendoza',
  'Asia/Calcutta': 'Asia/Kolkata',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Rangoon': 'Asia/Yangon',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
  'Europe/Kiev': 'Europe/Kyiv',
  'Pacific/Enderbury': 'Pacific/Kanton',
  'Pacific/Ponape': 'Pacific/Pohnpei',
  'Pacific/Truk': 'Pacific/Chuuk',
};
export const CLDR_LEGACY_NAMES: ReadonlyMap<string, string> = new Map(Object.entries(IANA_NAMES));

/** Where abbreviations are looked up: CLDR gives English short names (EST, BST, AEST) in these locales. */
const ABBREVIATION_LOCALES = ['en-US', 'en-GB', 'en-AU'] as const;
const MAX_SHOWN = 5;

let zones: ReadonlySet<string> | undefined;
let abbreviations: ReadonlyMap<string, readonly string[]> | undefined;

/** The zone Intl resolves `name` to, under its IANA name; undefined for a name Intl does not know. */
export function resolveTimeZone(name: string): string | undefined {
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
  return IANA_NAMES[resolved] ?? resolved;
}

/** Every canonical zone name, IANA spelling. */
export function canonicalTimeZones(): ReadonlySet<string> {
  zones ??= new Set(['UTC', ...Intl.supportedValuesOf('timeZone').map((z) => IANA_NAMES[z] ?? z)]);
  return zones;
}

export function isCanonicalTimeZone(name: string): boolean {
  return resolveTimeZone(name) === name;
}

/** Zones by the English abbreviations they show in winter or summer; built once, on the first refused name. */
function zonesByAbbreviation(): ReadonlyMap<string, readonly string[]> {
  if (abbreviations !== undefined) return abbreviations;
  const out = new Map<string, Set<string>>();
  const instants = [new Date(Date.UTC(2025, 0, 15)), new Date(Date.UTC(2025, 6, 15))];
  for (const zone of canonicalTimeZones()) {
    for (const locale of ABBREVIATION_LOCALES) {
      const f = new Intl.DateTimeFormat(locale, { timeZone: zone, timeZoneName: 'short' });
      for (const at of instants) {
        const short = f.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? '';
        if (!/^[A-Z]{2,5}$/.test(short) || short === 'UTC') continue;
        out.set(short, (out.get(short) ?? new Set()).add(zone));
      }
    }
  }
  abbreviations = new Map([...out].map(([k, v]) => [k, [...v].sort()]));
  return abbreviations;
}

function shown(names: readonly string[]): string {
  const head = names.slice(0, MAX_SHOWN);
  return names.length > MAX_SHOWN ? `${orList(head)} (${names.length - MAX_SHOWN} more)` : orList(head);
}

/** What is wrong with a time zone setting, as the end of "expected ..."; undefined for a canonical IANA name. */
export function timeZoneProblem(name: string): string | undefined {
  const resolved = resolveTimeZone(name);
  if (resolved === name) return undefined;
  const quoted = JSON.stringify(name);
  if (resolved !== undefined) {
    const sharing = /^[A-Za-z]{2,5}$/.test(name) ? (zonesByAbbreviation().get(name.toUpperCase()) ?? []) : [];
    const meant = [...new Set([resolved, ...sharing])];
    const alias = name.includes('/') ? 'the alias' : 'the alias or abbreviation';
    return `a canonical IANA time zone name, not ${alias} ${quoted}: did you mean ${shown(meant)}?`;
  }
  const sharing = /^[A-Za-z]{2,5}$/.test(name) ? (zonesByAbbreviation().get(name.toUpperCase()) ?? []) : [];
  const what = `an IANA time zone name such as "Europe/London" or "UTC", not ${quoted}`;
  if (sharing.length > 0) return `${what} (an abbreviation): did you mean ${shown(sharing)}?`;
  // A typo, or a city without its region ("London"): nearest full names, then names with that city.
  const city = name.replace(/\s+/g, '_').toLowerCase();
  const all = [...canonicalTimeZones()];
  const near = [
    ...closest(name, all),
    ...all.filter((z) => z.toLowerCase().endsWith(`/${city}`)),
    ...closest(
      city,
      all.map((z) => z.slice(z.lastIndexOf('/') + 1)),
    ).flatMap((c) => all.filter((z) => z.endsWith(`/${c}`))),
  ];
  return near.length > 0 ? `${what}: did you mean ${shown([...new Set(near)])}?` : what;
}
