// One AMI message (event or response) as it came off the wire. Keys are
// lower-cased (AMI header case differs between event types: Uniqueid vs
// UniqueID); a key that repeats inside one message (Command `Output:`,
// Status `Variable:`) holds every value in order. From the AMI client, an
// event carries the headers src/source/decode-plan.ts decodes for it (a
// response or a list item, all of them). Raw personal data: memory only,
// never logged, never written.
export type AmiMessage = Readonly<Record<string, string | readonly string[]>>;

/** First value of a header, '' when absent. */
export function field(msg: AmiMessage, key: string): string {
  const v = msg[key];
  if (v === undefined) return '';
  return typeof v === 'string' ? v : (v[0] ?? '');
}

/** The event name, or '' for a response. */
export function eventName(msg: AmiMessage): string {
  return field(msg, 'event');
}
