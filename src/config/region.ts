// Which regions a number can be read in: the ones libphonenumber has metadata
// for, not any two capital letters. A code it lacks would make every national
// number of that tenant unreadable (or, like `UK`, read as another country).
// CLDR's region names (Intl.DisplayNames) map the aliases people write - UK,
// a country's name - to the code they mean.
import { getCountries } from 'libphonenumber-js/max';
import { orList } from './suggest.js';

const SUPPORTED: ReadonlySet<string> = new Set(getCountries());
let byName: Map<string, string> | undefined;

function regionName(code: string): string | undefined {
  try {
    const name = new Intl.DisplayNames('en', { type: 'region', fallback: 'none' }).of(code);
    return name === undefined || name === code ? undefined : name;
  } catch {
    return undefined; // not a region subtag at all
  }
}

/** Supported regions by their English name, lower-cased ("united kingdom" -> GB). */
function namesToCodes(): Map<string, string> {
  if (byName === undefined) {
    byName = new Map();
    for (const code of SUPPORTED) {
      const name = regionName(code);
      if (name !== undefined) byName.set(name.toLowerCase(), code);
    }
  }
  return byName;
}

export function isSupportedRegion(code: string): boolean {
  return SUPPORTED.has(code);
}

/** What is wrong with a region setting, as the end of "expected ..."; undefined when libphonenumber knows it. */
export function regionProblem(value: string): string | undefined {
  if (SUPPORTED.has(value)) return undefined;
  const upper = value.toUpperCase();
  const name = regionName(upper);
  const meant = [upper, name === undefined ? undefined : namesToCodes().get(name.toLowerCase())]
    .concat(namesToCodes().get(value.trim().toLowerCase()))
    .filter((c): c is string => c !== undefined && SUPPORTED.has(c));
  const what = `a region code libphonenumber knows (ISO 3166-1 alpha-2, such as "GB" or "US"), not ${JSON.stringify(value)}`;
  if (meant.length > 0) return `${what}: did you mean ${orList([...new Set(meant)])}?`;
  // A name that is no country (EU, UN): say what it is, so the fix is clear.
  return name === undefined ? what : `${what} (${name}: not one country)`;
}
