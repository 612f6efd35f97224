// The command line's door: what a command prints passes the egress like any
// other output. The subject commands are given a subscriber's number: their
// output is checked against that number (in every format it can take) as
// well as against recent calls, so a token listing can never echo it.
// `callveil reveal` is the one intentional exception (README "The egress guard").
import { GatewayError } from '../errors.js';
import { defaultEgress, type Egress } from './egress.js';

type Out = (text: string) => void;

export const CLI_WITHHELD =
  'output withheld by the privacy guard: it held a raw number; nothing more is printed (a bug: please report it)';

/** `out`, checked against the numbers the command was given; a hit throws GW_PRIVACY_GUARD before anything is written. */
export function guardedOut(
  out: Out,
  numbers: ReadonlyArray<string | undefined>,
  egress: Egress = defaultEgress(),
): Out {
  const own = egress.valuesOf(numbers.filter((n): n is string => n !== undefined));
  return (text) => {
    if (!egress.pass('cli', text, { own })) throw new GatewayError('GW_PRIVACY_GUARD', CLI_WITHHELD);
    out(text);
  };
}

/** A text that may leave as the output of a command given these numbers (a file it writes, e.g. an export). */
export function cliMayWrite(text: string, numbers: readonly string[], egress: Egress = defaultEgress()): void {
  if (!egress.pass('cli', text, { own: egress.valuesOf(numbers) }))
    throw new GatewayError('GW_PRIVACY_GUARD', CLI_WITHHELD);
}
