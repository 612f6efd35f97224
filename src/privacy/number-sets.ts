// Number sets in rules files: an exact number, a range of equal-length
// numbers, or an Asterisk dialplan pattern (_X, _Z, _N, [1-5], ., !).
export type NumberSetMatcher = (value: string) => boolean;

function patternToRegExp(pattern: string): RegExp {
  let re = '';
  const body = pattern.slice(1);
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '[') {
      const end = body.indexOf(']', i);
      re += `[${body.slice(i + 1, end)}]`;
      i = end;
    } else if (c === 'X' || c === 'x') re += '[0-9]';
    else if (c === 'Z' || c === 'z') re += '[1-9]';
    else if (c === 'N' || c === 'n') re += '[2-9]';
    else if (c === '.') re += '.+';
    else if (c === '!') re += '.*';
    else if (c === '+') re += '\\+';
    else re += c;
  }
  return new RegExp(`^${re}$`);
}

/** `spec` was validated by the rules schema (NUMBER_SET). */
export function compileNumberSet(spec: string): NumberSetMatcher {
  if (spec.startsWith('_')) {
    const re = patternToRegExp(spec);
    return (v) => re.test(v);
  }
  const dash = spec.indexOf('-', 1);
  if (dash > 0) {
    const lo = spec.slice(0, dash);
    const hi = spec.slice(dash + 1);
    const plus = lo.startsWith('+');
    const [a, b] = [lo.replace('+', ''), hi.replace('+', '')];
    return (v) => {
      if (v.startsWith('+') !== plus) return false;
      const d = plus ? v.slice(1) : v;
      return d.length === a.length && /^[0-9]+$/.test(d) && d >= a && d <= b;
    };
  }
  return (v) => v === spec;
}

/** Problems with a range (unequal lengths, low above high), for the rules checker; undefined when fine. */
export function numberSetProblem(spec: string): string | undefined {
  if (spec.startsWith('_')) return undefined;
  const dash = spec.indexOf('-', 1);
  if (dash < 0) return undefined;
  const lo = spec.slice(0, dash);
  const hi = spec.slice(dash + 1);
  if (lo.startsWith('+') !== hi.startsWith('+') || lo.length !== hi.length)
    return 'a range "A-B" whose ends have the same length and form';
  if (lo > hi) return 'a range "A-B" with A not above B';
  return undefined;
}

/** Glob (`*`, `?`) over a context or peer name. */
export function compileGlob(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

/** `SIP/1001-0000000b` -> `1001`; `PJSIP/trunk-00000001` -> `trunk`; '' when the name has no peer part. */
export function peerOfChannel(channel: string): string {
  const slash = channel.indexOf('/');
  if (slash < 0) return '';
  const rest = channel.slice(slash + 1);
  const dash = rest.lastIndexOf('-');
  return dash > 0 ? rest.slice(0, dash) : rest;
}
