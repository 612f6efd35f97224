// Settings whose valid values a library knows (regions, time zones), shared
// by the config schema and the rules schema.
import { z } from 'zod';
import { regionProblem } from './region.js';
import { timeZoneProblem } from './time-zone.js';

/** A string checked by a function that says what is wrong (as the end of "expected ..."), or nothing. */
function checkedString(problem: (value: string) => string | undefined) {
  return z.string().superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  });
}

/** A canonical IANA zone name: an alias (BST, EST, Asia/Calcutta) is refused with the zones it could mean. */
export const timeZone = checkedString(timeZoneProblem);
/** A region libphonenumber has metadata for (so `UK` is refused: did you mean "GB"?). */
export const region = checkedString(regionProblem);
