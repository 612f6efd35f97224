// Asterisk writes CDR times as local wall-clock `YYYY-MM-DD HH:MM:SS` in the
// PBX's time zone; records carry ISO-8601 UTC.
const WALL_CLOCK = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

const formatters = new Map<string, Intl.DateTimeFormat>();

function zoneFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws RangeError for a time zone Intl does not know; config validation calls it once at start. */
export function assertTimeZone(timeZone: string): void {
  zoneFormatter(timeZone);
}

function offsetMs(timeZone: string, utcMs: number): number {
  if (timeZone === 'UTC') return 0;
  const parts: Record<string, number> = {};
  for (const p of zoneFormatter(timeZone).formatToParts(new Date(utcMs))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const asUtc = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

// The same wall-clock second comes many times (a leg's start is another's
// answer, every CEL event of a second carries it): converted once. Bounded;
// the keys are copies (a parser's value is a slice of its whole frame).
const CACHE_MAX = 4096;
let cacheZone = '';
const cache = new Map<string, string | null>();

/** `2026-11-18 10:12:20` in `timeZone` -> `2026-11-18T10:12:20.000Z`; null for empty or malformed input. */
export function pbxTimeToIso(wall: string, timeZone: string): string | null {
  if (timeZone !== cacheZone) {
    cache.clear();
    cacheZone = timeZone;
  }
  const hit = cache.get(wall);
  if (hit !== undefined) return hit;
  const iso = convert(wall, timeZone);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(wall.length < 13 ? wall : (' ' + wall).slice(1), iso);
  return iso;
}

function convert(wall: string, timeZone: string): string | null {
  const m = WALL_CLOCK.exec(wall);
  if (m === null) return null;
  const [y, mo, d, h, mi, se] = [+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!];
  const guess = Date.UTC(y, mo - 1, d, h, mi, se);
  // Date.UTC rolls over out-of-range fields (month 13 is next January); reject them instead.
  const check = new Date(guess);
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) return null;
  // Two passes settle the offset across a DST change.
  let utc = guess - offsetMs(timeZone, guess);
  utc = guess - offsetMs(timeZone, utc);
  return new Date(utc).toISOString();
}
