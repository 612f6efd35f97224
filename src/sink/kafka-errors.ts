// What a kafkajs failure means, read from the error it threw: the broker's
// own error code when the broker answered (INVALID_PARTITIONS,
// TOPIC_AUTHORIZATION_FAILED, UNKNOWN_TOPIC_OR_PARTITION...), or the way the
// link failed when it did not (ECONNREFUSED, REQUEST_TIMEOUT...). kafkajs
// wraps causes in retries and aggregates, so the chain is walked.

interface ErrorLike {
  readonly name?: unknown;
  readonly type?: unknown;
  readonly code?: unknown;
  readonly cause?: unknown;
  readonly originalError?: unknown;
  readonly errors?: unknown;
  readonly groups?: unknown;
}

/** Broker codes that say the topic is not there (yet): create it and send again. */
const MISSING_TOPIC = new Set(['UNKNOWN_TOPIC_OR_PARTITION']);
/** kafkajs's own names for "no metadata for this topic", which it says when the broker listed none. */
const MISSING_METADATA = new Set(['KafkaJSMetadataNotLoaded', 'KafkaJSTopicMetadataNotLoaded']);
/** Broker codes of a cluster busy electing or moving leaders: transient, the link itself is fine. */
const TRANSIENT = new Set([
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'NOT_LEADER_OR_FOLLOWER',
  'REQUEST_TIMED_OUT',
  'NOT_ENOUGH_REPLICAS',
  'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  'NOT_CONTROLLER',
  'COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'NOT_COORDINATOR',
]);

/** The errors on a kafkajs failure's chain, outermost first (bounded: chains are short, cycles are not followed). */
function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 16) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || out.includes(e as ErrorLike)) continue;
    const x = e as ErrorLike;
    out.push(x);
    if (Array.isArray(x.errors)) queue.push(...(x.errors as unknown[]));
    // KafkaJSDeleteGroupsError: one { groupId, error } per group.
    if (Array.isArray(x.groups)) queue.push(...(x.groups as Array<{ error?: unknown }>).map((g) => g?.error));
    queue.push(x.originalError, x.cause);
  }
  return out;
}

/** The broker's error code, if the broker answered with one. */
export function brokerCodeOf(err: unknown): string | undefined {
  for (const e of chain(err)) if (typeof e.type === 'string' && /^[A-Z][A-Z0-9_]*$/.test(e.type)) return e.type;
  return undefined;
}

/**
 * A short code for logs, metrics and `check`: the broker's code, else how the
 * link failed (a socket code such as ECONNREFUSED, REQUEST_TIMEOUT, ...).
 * Plain upper-case words only: never a message text.
 */
export function kafkaCodeOf(err: unknown): string {
  const broker = brokerCodeOf(err);
  if (broker !== undefined) return broker;
  const errors = chain(err);
  for (const e of errors) if (typeof e.code === 'string' && /^E[A-Z0-9_]+$/.test(e.code)) return e.code;
  for (const e of errors) {
    switch (e.name) {
      case 'KafkaJSRequestTimeoutError':
        return 'REQUEST_TIMEOUT';
      case 'KafkaJSConnectionClosedError':
        return 'CONNECTION_CLOSED';
      case 'KafkaJSConnectionError':
        return 'CONNECTION_ERROR';
      case 'KafkaJSSASLAuthenticationError':
        return 'SASL_AUTHENTICATION_FAILED';
      case 'KafkaJSBrokerNotFound':
      case 'KafkaJSNoBrokerAvailableError':
        return 'NO_BROKER_AVAILABLE';
      case 'KafkaJSMetadataNotLoaded':
      case 'KafkaJSTopicMetadataNotLoaded':
        return 'METADATA_NOT_LOADED';
      case 'KafkaJSLockTimeout':
        return 'LOCK_TIMEOUT';
    }
  }
  return 'UNKNOWN';
}

/** The send failed because a topic is missing: ensure it and send again. */
export function isMissingTopic(err: unknown): boolean {
  return chain(err).some(
    (e) => (typeof e.type === 'string' && MISSING_TOPIC.has(e.type)) || MISSING_METADATA.has(e.name as string),
  );
}

/**
 * The broker answered, but no: an ACL, a policy, a version or a setting
 * refused the request. A retry alone will not help; the operator must act,
 * so the code is logged (once) and shown by `check`.
 */
export function isRefusal(err: unknown): boolean {
  const code = brokerCodeOf(err);
  return code !== undefined && !MISSING_TOPIC.has(code) && !TRANSIENT.has(code);
}
