// The gateway's one error type: a closed set of codes, each saying whether a
// retry can help. Messages never carry caller data (numbers, names, URIs):
// callers put identifiers and counts in them, nothing from an AMI value.
export const ERROR_CODES = {
  GW_CONFIG_INVALID: false,
  GW_CONFIG_UNREADABLE: false,
  GW_AMI_CONNECT: true,
  GW_AMI_AUTH: true,
  GW_AMI_TIMEOUT: true,
  GW_AMI_CLOSED: true,
  GW_AMI_FRAME: false,
  GW_AMI_ACTION: false,
  GW_CAPTURE_UNREADABLE: false,
  GW_PRIVACY_NO_KEY: false,
  GW_PRIVACY_UNKNOWN_TENANT: false,
  GW_PRIVACY_INVALID: false,
  GW_SINK_UNAVAILABLE: true,
  GW_SINK_WRITE: true,
  GW_SINK_CLOSED: false,
  GW_SPOOL_FULL: true,
  GW_SPOOL_IO: false,
  /** The spool cannot be keyed: a tenant's spooled records have no id key loaded, or do not open under it. */
  GW_SPOOL_KEY: false,
  GW_USAGE: false,
  GW_OUTPUT_IO: false,
  GW_CONSENT_STORE: false,
  GW_SUPPRESSION_STORE: false,
  GW_TENANT_SHREDDED: false,
  GW_STATE_LOCKED: false,
  /** No usable audit key (keys file auditKey, or CALLVEIL_AUDIT_KEY). */
  GW_AUDIT_KEY: false,
  /** No usable storage key, or a store sealed under another one (keys file storageKey, or CALLVEIL_STORAGE_KEY). */
  GW_STORAGE_KEY: false,
  /** An output file another live process writes (a second gateway pointed at the same JSONL file). */
  GW_FILE_IN_USE: false,
  /** The egress guard refused an output: it held a raw value of a call. */
  GW_PRIVACY_GUARD: false,
  /** storage.dir cannot be created, read or written (permissions, a file in the way, a special file system). */
  GW_STORAGE: false,
  /** A listener (api.port, metrics.port) cannot bind: in use, no permission, not an address of this host. */
  GW_LISTEN: false,
} as const satisfies Record<string, boolean>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.retriable = options?.retriable ?? ERROR_CODES[code];
  }
}

/** Walks the cause chain: retriable only if nothing on it says it is not. */
export function isRetriable(err: unknown): boolean {
  let cur: unknown = err;
  let sawGateway = false;
  for (let depth = 0; cur instanceof Error && depth < 10; depth++) {
    if (cur instanceof GatewayError) {
      if (!cur.retriable) return false;
      sawGateway = true;
    }
    cur = cur.cause;
  }
  return sawGateway;
}
