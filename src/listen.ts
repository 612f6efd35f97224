// Binding a listener (the tenant API, the metrics endpoint), with a failure
// that names the setting and the address instead of a bare EADDRINUSE.
import type { Server } from 'node:net';
import { GatewayError } from './errors.js';

export interface ListenOn {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  /** The config section the address comes from (`api`, `metrics`): messages name `<section>.port` / `<section>.host`. */
  readonly section: string;
}

function address(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function listenError(on: ListenOn, err: NodeJS.ErrnoException): GatewayError {
  const at = address(on.host, on.port);
  const code = err.code ?? 'error';
  const text: Record<string, string> = {
    EADDRINUSE: `${on.section}.port: ${at} is in use — fix: stop what listens there, or set ${on.section}.port to a free port`,
    EACCES: `${on.section}.port: ${at}: permission denied (EACCES; ports below 1024 need privileges) — fix: use a port above 1023`,
    EADDRNOTAVAIL: `${on.section}.host: ${on.host} is not an address of this host (EADDRNOTAVAIL) — fix: use 127.0.0.1, 0.0.0.0 or one of this host's addresses`,
    ENOTFOUND: `${on.section}.host: ${on.host} does not resolve (ENOTFOUND) — fix: use an IP address or a name this host resolves`,
    EAI_AGAIN: `${on.section}.host: ${on.host} could not be resolved now (EAI_AGAIN) — fix: use an IP address`,
  };
  return new GatewayError('GW_LISTEN', text[code] ?? `${on.section}.port: cannot listen on ${at} (${code})`, {
    cause: err,
  });
}

/** Listens on `on`; resolves with the port bound (the real one for port 0). */
export function listen(server: Server, on: ListenOn): Promise<number> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(listenError(on, err));
    server.once('error', failed);
    server.listen(on.port, on.host, () => {
      server.off('error', failed);
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : on.port);
    });
  });
}
