// The Kafka ACLs each callveil command needs, in one place: `callveil check`
// prints them, and the README's list is this one. Resources are given as
// Kafka's ACL resource types (Topic, Group, Cluster) with literal names or
// prefixes, as `kafka-acls.sh --resource-pattern-type prefixed` takes them.

export interface AclNeed {
  /** e.g. `Topic prefixed "callveil."` */
  readonly resource: string;
  readonly operations: readonly string[];
  /** When the need applies; always when absent. */
  readonly when?: string;
}

export interface CommandAcls {
  readonly command: string;
  readonly needs: readonly AclNeed[];
}

/** What every idempotent producer needs before Kafka 2.8 (KIP-679 made Write on a topic enough). */
const IDEMPOTENT: AclNeed = { resource: 'Cluster', operations: ['IdempotentWrite'], when: 'Kafka before 2.8' };

export function kafkaAcls(prefix: string, clientId: string): CommandAcls[] {
  const all = `Topic prefixed "${prefix}."`;
  return [
    {
      command: 'run, replay (to Kafka)',
      needs: [
        { resource: all, operations: ['Describe', 'Write'] },
        { resource: all, operations: ['Create'], when: 'unless every topic is created ahead of time' },
        { resource: all, operations: ['DescribeConfigs'], when: 'topic retention checks at start and every sweep' },
        { resource: all, operations: ['AlterConfigs'], when: 'sink.fixRetention: true' },
        { resource: `Topic "${prefix}.consent"`, operations: ['Read'], when: 'consent.topic.enabled (the default)' },
        {
          resource: `Group prefixed "${clientId}-follow-"`,
          operations: ['Read', 'Delete'],
          when: 'consent.topic.enabled (the default)',
        },
        IDEMPOTENT,
      ],
    },
    {
      command: 'check',
      needs: [
        { resource: all, operations: ['Describe', 'DescribeConfigs'] },
        {
          resource: all,
          operations: ['Create'],
          when: 'to validate the creation of missing topics (nothing is created)',
        },
      ],
    },
    {
      command: 'subject erase',
      needs: [
        { resource: `Topic "${prefix}.<tenant>.erasure"`, operations: ['Describe', 'Write'] },
        {
          resource: `Topic "${prefix}.<tenant>.erasure"`,
          operations: ['Create'],
          when: 'unless created ahead of time',
        },
        IDEMPOTENT,
      ],
    },
    {
      command: 'subject export',
      needs: [
        { resource: `Topic "${prefix}.<tenant>.cdr"`, operations: ['Describe', 'Read'] },
        { resource: `Group prefixed "${clientId}-read-"`, operations: ['Read', 'Delete'] },
      ],
    },
    {
      command: 'tenant shred',
      needs: [
        {
          resource: `Topic "${prefix}.consent"`,
          operations: ['Describe', 'Read', 'Write'],
          when: "tombstones for the tenant's consent keys",
        },
        {
          resource: `Group prefixed "${clientId}-read-"`,
          operations: ['Read', 'Delete'],
          when: "tombstones for the tenant's consent keys",
        },
      ],
    },
  ];
}

/** One line per command: `run: Topic prefixed "callveil.": Describe, Write; ...`. */
export function aclSummary(acls: readonly CommandAcls[]): string[] {
  return acls.map(
    (c) =>
      `${c.command}: ${c.needs.map((n) => `${n.resource} ${n.operations.join('+')}${n.when === undefined ? '' : ` (${n.when})`}`).join('; ')}`,
  );
}
