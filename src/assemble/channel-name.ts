// Asterisk channel names, read for where a party is: `SIP/1001-0000000b`,
// `PJSIP/trunk-0000002a`, `IAX2/peer-1234`, `DAHDI/i1/07700900123-1`,
// `Local/3103@phones-00000003;1`, and Asterisk 11's masquerade names
// (`Transfered/SIP/...`, `SIP/x<MASQ>`, `SIP/x<ZOMBIE>`). Raw in, raw out:
// peer names and Local extensions can be phone numbers, so nothing parsed
// here may be copied to an output.

export interface ChannelName {
  /** SIP, PJSIP, IAX2, DAHDI, Local, ... ('' when the name has no technology). */
  readonly tech: string;
  /** The endpoint / peer (`1001`, `trunk`); for Local channels the `exten@context` part. */
  readonly peer: string;
  /** Local channels: the pair this half belongs to (the name without `;1`/`;2`) and which half. */
  readonly local?: { readonly pair: string; readonly half: 1 | 2; readonly exten: string; readonly context: string };
}

const NONE: ChannelName = { tech: '', peer: '' };

export function parseChannelName(name: string): ChannelName {
  let n = name;
  // Asterisk 11 masquerades: the clone's temporary names.
  if (n.startsWith('Transfered/')) n = n.slice('Transfered/'.length);
  const angle = n.indexOf('<');
  if (angle > 0) n = n.slice(0, angle);
  const slash = n.indexOf('/');
  if (slash <= 0) return NONE;
  const tech = n.slice(0, slash);
  const rest = n.slice(slash + 1);
  if (tech === 'Local') {
    const semi = rest.lastIndexOf(';');
    const half = semi > 0 ? rest.slice(semi + 1) : '';
    const body = semi > 0 ? rest.slice(0, semi) : rest;
    // `exten@context-<8 hex>`: the suffix makes the pair unique.
    const dash = body.lastIndexOf('-');
    const target = dash > 0 ? body.slice(0, dash) : body;
    const at = target.indexOf('@');
    const exten = at >= 0 ? target.slice(0, at) : target;
    const context = at >= 0 ? target.slice(at + 1) : '';
    return {
      tech,
      peer: target,
      ...(half === '1' || half === '2'
        ? { local: { pair: `${tech}/${body}`, half: half === '1' ? 1 : 2, exten, context } }
        : {}),
    };
  }
  // DAHDI/i1/<number>-1, DAHDI/1-1: the span/group is the "peer".
  if (tech === 'DAHDI') {
    const s = rest.indexOf('/');
    return { tech, peer: s > 0 ? rest.slice(0, s) : rest.replace(/-[0-9]+$/, '') };
  }
  // `<peer>-<sequence>`: the sequence is the last dash-separated part.
  const dash = rest.lastIndexOf('-');
  return { tech, peer: dash > 0 ? rest.slice(0, dash) : rest };
}

/**
 * The peer a dial string names as a trunk: a number dialled through it
 * (`trunk/07700900123` for chan_sip/IAX2, `07700900123@trunk` for PJSIP).
 * undefined when the dial string dials an endpoint by name (`1002`, `PJSIP/3102`).
 */
export function trunkOfDialString(dialString: string): string | undefined {
  const s = dialString.replace(/^(?:SIP|PJSIP|IAX2)\//i, '');
  const slash = s.indexOf('/');
  if (slash > 0 && /^\+?[0-9][0-9 ()-]*$/.test(s.slice(slash + 1).split(/[,/]/)[0] ?? '')) return s.slice(0, slash);
  const at = s.indexOf('@');
  if (at > 0 && /^\+?[0-9][0-9 ()-]*$/.test(s.slice(0, at))) return s.slice(at + 1).split(/[,/]/)[0];
  return undefined;
}
