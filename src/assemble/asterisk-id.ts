// Asterisk's channel ids (Uniqueid, Linkedid) are accepted whatever they look
// like: `[systemname-]epoch.sequence` where the system name may be a Docker
// hostname (`195176c06ab8`), a dotted name, or an Originate ChannelId an
// application chose. None of them ever leaves the gateway raw (privacy/ids.ts
// keys them), so the only check left is that the value can be an id at all.

/** Asterisk's own bound (AST_MAX_UNIQUEID, include/asterisk/channel.h). */
export const MAX_ASTERISK_ID_LENGTH = 150;

// Printable ASCII without spaces: what Asterisk's ids are made of.
const USABLE = /^[\x21-\x7e]+$/;

export function isUsableId(value: string): boolean {
  return value.length > 0 && value.length <= MAX_ASTERISK_ID_LENGTH && USABLE.test(value);
}
