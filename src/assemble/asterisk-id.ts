// Asterisk's channel ids: `[systemname-]epoch.sequence`. Only values of this
// shape are carried as ids (records, logs); a UniqueID that looks like
// anything else, say a phone number in a mangled frame, is not copied.
const ASTERISK_ID = /^(?:[A-Za-z][A-Za-z0-9_-]{0,47}-)?([0-9]{9,10})\.[0-9]{1,10}$/;
// Epoch seconds between 2001 and 2039: rules out most digit strings that are
// numbers. Not all: a 10-digit national number followed by `.N` in a mangled
// UniqueID would pass (e.g. US 202..., in range until 2034), so this is a
// guard against corruption, not a guarantee; Asterisk makes these ids itself.
const MIN_EPOCH = 1_000_000_000;
const MAX_EPOCH = 2_200_000_000;

export function isAsteriskId(value: string): boolean {
  const m = ASTERISK_ID.exec(value);
  if (m === null) return false;
  const epoch = Number(m[1]);
  return epoch >= MIN_EPOCH && epoch <= MAX_EPOCH;
}
