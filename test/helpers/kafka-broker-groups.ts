// The consumer-group coordinator of the test broker (test/helpers/kafka-broker.ts):
// FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
// OffsetFetch and DeleteGroups, for kafkajs consumers (subject export) and
// the tests that watch their groups.
import { randomUUID } from 'node:crypto';
import {
  ApiKey,
  ErrorCode,
  HOST,
  MalformedError,
  NODE_ID,
  Reader,
  readArray,
  readNullableArray,
  Writer,
  type RequestHeader,
} from './kafka-broker-wire.js';

/** A consumer group as the coordinator sees it, with the consumer protocol payloads decoded. */
export interface GroupState {
  readonly state: 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';
  readonly generationId: number;
  readonly protocolType: string | null;
  /** The assignor the members agreed on (kafkajs: RoundRobinAssigner), null while Empty. */
  readonly protocol: string | null;
  readonly leaderId: string | null;
  readonly members: ReadonlyArray<{
    readonly memberId: string;
    /** Topics from the member's subscription metadata; null if it is not in consumer protocol format. */
    readonly subscription: readonly string[] | null;
    /** topic -> partitions from the leader's assignment; null before SyncGroup or if undecodable. */
    readonly assignment: Readonly<Record<string, readonly number[]>> | null;
  }>;
  /** Committed offsets: topic -> partition -> next offset to read. */
  readonly offsets: Readonly<Record<string, Readonly<Record<number, number>>>>;
}

// FindCoordinator key type 0; 1 (transactions) has no coordinator here.
const COORDINATOR_GROUP = 0;
// Kafka's group.min/max.session.timeout.ms are 6 s and 30 min; the minimum is
// lowered so tests can watch a silent member expire quickly.
const MIN_SESSION_TIMEOUT_MS = 100;
const MAX_SESSION_TIMEOUT_MS = 1_800_000;

/** What the coordinator needs from the broker it runs in. */
export interface CoordinatorHost<C> {
  readonly port: number;
  respond(conn: C, w: Writer): void;
  /** Holds the connection's later requests until the returned function sends this one's answer. */
  hold(conn: C): (w: Writer) => void;
  /** A timer the broker clears when it closes. */
  timer(ms: number, fn: () => void): NodeJS.Timeout;
  clearTimer(t: NodeJS.Timeout | undefined): void;
  hasPartition(topic: string, partition: number): boolean;
  /** The error code a test asked DeleteGroups to answer with, if any. */
  deleteGroupsRefusal(): number | undefined;
}

interface Member {
  readonly id: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: ReadonlyArray<{ name: string; metadata: Buffer }>;
  /** The leader's assignment for this member in the current generation; null until SyncGroup. */
  assignment: Buffer | null;
  /** Set while the member's JoinGroup waits for the round to complete; null evicts it. */
  joinReply?: (join: ((memberId: string) => JoinAnswer) | null) => void;
  /** Set while the member's SyncGroup waits for the leader's assignment. */
  syncReply?: (errorCode: number) => void;
  expiry?: NodeJS.Timeout;
}

interface JoinAnswer {
  generation: number;
  protocol: string;
  leader: string;
  /** Everyone's subscription for the leader, nothing for followers. */
  members: Member[];
}

interface Group {
  readonly id: string;
  state: GroupState['state'];
  generation: number;
  protocolType: string | null;
  protocol: string | null;
  leader: string | null;
  members: Map<string, Member>;
  /** Ids handed out with MEMBER_ID_REQUIRED, valid for the member's next JoinGroup. */
  pendingIds: Set<string>;
  rebalanceTimer?: NodeJS.Timeout;
  offsets: Map<string, CommittedOffset>;
}

interface CommittedOffset {
  offset: number;
  metadata: string | null;
}

export class GroupCoordinator<C> {
  private readonly groupsById = new Map<string, Group>();

  constructor(private readonly host: CoordinatorHost<C>) {}

  /** Answers the request if it is a group API; false if it is not one. */
  handle(conn: C, h: RequestHeader, r: Reader): boolean {
    switch (h.apiKey) {
      case ApiKey.FindCoordinator:
        this.handleFindCoordinator(conn, h, r);
        return true;
      case ApiKey.JoinGroup:
        this.handleJoinGroup(conn, h, r);
        return true;
      case ApiKey.SyncGroup:
        this.handleSyncGroup(conn, h, r);
        return true;
      case ApiKey.Heartbeat:
        this.handleHeartbeat(conn, h, r);
        return true;
      case ApiKey.LeaveGroup:
        this.handleLeaveGroup(conn, h, r);
        return true;
      case ApiKey.OffsetCommit:
        this.handleOffsetCommit(conn, h, r);
        return true;
      case ApiKey.OffsetFetch:
        this.handleOffsetFetch(conn, h, r);
        return true;
      case ApiKey.DeleteGroups:
        this.handleDeleteGroups(conn, h, r);
        return true;
      default:
        return false;
    }
  }

  groups(): string[] {
    return [...this.groupsById.keys()];
  }

  groupState(groupId: string): GroupState | undefined {
    const g = this.groupsById.get(groupId);
    if (g === undefined) return undefined;
    const offsets: Record<string, Record<number, number>> = {};
    for (const [key, committed] of g.offsets) {
      const { topic, partition } = parseOffsetKey(key);
      (offsets[topic] ??= {})[partition] = committed.offset;
    }
    return {
      state: g.state,
      generationId: g.generation,
      protocolType: g.protocolType,
      protocol: g.protocol,
      leaderId: g.leader,
      members: [...g.members.values()].map((m) => ({
        memberId: m.id,
        subscription: decodeSubscription(
          m.protocols.find((p) => p.name === g.protocol)?.metadata ?? m.protocols[0]?.metadata,
        ),
        assignment: m.assignment === null ? null : decodeAssignment(m.assignment),
      })),
      offsets,
    };
  }

  // ---- consumer groups: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup

  /*
   * One broker is every group's coordinator. The state machine is Kafka's
   * (Empty -> PreparingRebalance -> CompletingRebalance -> Stable), reduced to
   * what clients can observe: a join round waits until every known member has
   * rejoined (or the largest rebalance timeout passes and stragglers are
   * evicted), then bumps the generation and answers all joins at once, the
   * leader's answer carrying every member's subscription; SyncGroup answers
   * wait for the leader's assignment. Members that stop heartbeating are
   * evicted after their session timeout. Responses that must wait hold their
   * connection (later requests on it queue), as a real broker's would.
   */

  private handleFindCoordinator(conn: C, h: RequestHeader, r: Reader): void {
    r.string(); // the group (or transactional) id: this broker coordinates all of them
    const type = h.apiVersion >= 1 ? r.int8() : COORDINATOR_GROUP;
    const ok = type === COORDINATOR_GROUP;
    const w = new Writer(h.correlationId);
    if (h.apiVersion >= 1) w.int32(0); // throttle_time_ms
    w.int16(ok ? ErrorCode.NONE : ErrorCode.COORDINATOR_NOT_AVAILABLE);
    if (h.apiVersion >= 1) w.nullableString(ok ? null : 'the test broker has no transaction coordinator');
    w.int32(ok ? NODE_ID : -1)
      .nullableString(ok ? HOST : '')
      .int32(ok ? this.host.port : -1);
    this.host.respond(conn, w);
  }

  private handleJoinGroup(conn: C, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const sessionTimeoutMs = r.int32();
    const rebalanceTimeoutMs = v >= 1 ? r.int32() : sessionTimeoutMs;
    let memberId = r.string();
    if (v >= 5) r.nullableString(); // group_instance_id: static membership is not supported, members are all dynamic
    const protocolType = r.string();
    const protocols = readArray(r, () => ({ name: r.string(), metadata: r.nullableBytes() ?? Buffer.alloc(0) }));

    const reply = (
      errorCode: number,
      join?: { generation: number; protocol: string; leader: string; members: Member[] },
    ) => {
      const w = new Writer(h.correlationId, 256);
      if (v >= 2) w.int32(0); // throttle_time_ms
      w.int16(errorCode)
        .int32(join?.generation ?? -1)
        .nullableString(join?.protocol ?? '')
        .nullableString(join?.leader ?? '')
        .nullableString(memberId)
        .int32(join?.members.length ?? 0);
      for (const m of join?.members ?? []) {
        w.nullableString(m.id);
        if (v >= 5) w.nullableString(null);
        w.bytes(m.protocols.find((p) => p.name === join!.protocol)!.metadata);
      }
      return w;
    };
    const fail = (errorCode: number) => this.host.respond(conn, reply(errorCode));

    if (groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
    if (sessionTimeoutMs < MIN_SESSION_TIMEOUT_MS || sessionTimeoutMs > MAX_SESSION_TIMEOUT_MS)
      return fail(ErrorCode.INVALID_SESSION_TIMEOUT);
    if (protocolType === '' || protocols.length === 0) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    const group = this.group(groupId);
    const others = [...group.members.values()].filter((m) => m.id !== memberId);
    if (others.length > 0) {
      const common = protocols.some((p) => others.every((m) => m.protocols.some((q) => q.name === p.name)));
      if (group.protocolType !== protocolType || !common) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    }

    if (memberId === '') {
      memberId = `${h.clientId ?? 'client'}-${randomUUID()}`;
      // Since v4 a new member first learns its id, then joins with it (KIP-394).
      if (v >= 4) {
        group.pendingIds.add(memberId);
        return fail(ErrorCode.MEMBER_ID_REQUIRED);
      }
    } else if (!group.members.has(memberId) && !group.pendingIds.delete(memberId)) {
      return fail(ErrorCode.UNKNOWN_MEMBER_ID);
    }

    let member = group.members.get(memberId);
    if (member === undefined) {
      member = { id: memberId, sessionTimeoutMs, rebalanceTimeoutMs, protocols, assignment: null };
      group.members.set(memberId, member);
    }
    Object.assign(member, { sessionTimeoutMs, rebalanceTimeoutMs, protocols });
    group.protocolType = protocolType;
    const id = memberId;
    const done = this.host.hold(conn);
    member.joinReply = (join) =>
      done(join === null ? reply(ErrorCode.UNKNOWN_MEMBER_ID) : reply(ErrorCode.NONE, join(id)));
    this.touch(group, member);
    if (group.state !== 'PreparingRebalance') this.prepareRebalance(group);
    this.maybeCompleteJoin(group);
  }

  private handleSyncGroup(conn: C, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const generation = r.int32();
    const memberId = r.string();
    if (v >= 3) r.nullableString(); // group_instance_id
    const assignments = readArray(r, () => ({
      memberId: r.string(),
      assignment: r.nullableBytes() ?? Buffer.alloc(0),
    }));

    const reply = (errorCode: number, assignment: Buffer) => {
      const w = new Writer(h.correlationId);
      if (v >= 1) w.int32(0); // throttle_time_ms
      return w.int16(errorCode).bytes(assignment);
    };
    const group = this.groupsById.get(groupId);
    const member = group?.members.get(memberId);
    const error =
      group === undefined || member === undefined
        ? ErrorCode.UNKNOWN_MEMBER_ID
        : generation !== group.generation
          ? ErrorCode.ILLEGAL_GENERATION
          : group.state === 'PreparingRebalance'
            ? ErrorCode.REBALANCE_IN_PROGRESS
            : ErrorCode.NONE;
    if (error !== ErrorCode.NONE || group === undefined || member === undefined) {
      this.host.respond(conn, reply(error, Buffer.alloc(0)));
      return;
    }
    this.touch(group, member);
    if (group.state === 'Stable') {
      this.host.respond(conn, reply(ErrorCode.NONE, member.assignment ?? Buffer.alloc(0)));
      return;
    }
    // CompletingRebalance: everyone waits for the leader's assignment.
    const done = this.host.hold(conn);
    member.syncReply = (errorCode) =>
      done(reply(errorCode, errorCode === ErrorCode.NONE ? (member.assignment ?? Buffer.alloc(0)) : Buffer.alloc(0)));
    if (memberId === group.leader) {
      for (const m of group.members.values()) {
        m.assignment = assignments.find((a) => a.memberId === m.id)?.assignment ?? Buffer.alloc(0);
      }
      group.state = 'Stable';
      for (const m of group.members.values()) this.settleSync(m, ErrorCode.NONE);
    }
  }

  private handleHeartbeat(conn: C, h: RequestHeader, r: Reader): void {
    const groupId = r.string();
    const generation = r.int32();
    const memberId = r.string();
    if (h.apiVersion >= 3) r.nullableString(); // group_instance_id
    const group = this.groupsById.get(groupId);
    const member = group?.members.get(memberId);
    let error: number = ErrorCode.NONE;
    if (group === undefined || member === undefined) error = ErrorCode.UNKNOWN_MEMBER_ID;
    else if (generation !== group.generation) error = ErrorCode.ILLEGAL_GENERATION;
    else if (group.state === 'PreparingRebalance') error = ErrorCode.REBALANCE_IN_PROGRESS; // the member must rejoin
    if (group !== undefined && member !== undefined) this.touch(group, member);
    const w = new Writer(h.correlationId);
    if (h.apiVersion >= 1) w.int32(0); // throttle_time_ms
    this.host.respond(conn, w.int16(error));
  }

  private handleLeaveGroup(conn: C, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const leaving =
      v >= 3
        ? readArray(r, () => ({ memberId: r.string(), instance: r.nullableString() }))
        : [{ memberId: r.string(), instance: null }];
    const group = this.groupsById.get(groupId);
    const results = leaving.map((l) => {
      const known = group?.members.has(l.memberId) === true;
      if (known) this.removeMember(group!, l.memberId);
      return { ...l, errorCode: known ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID };
    });
    const w = new Writer(h.correlationId);
    if (v >= 1) w.int32(0); // throttle_time_ms
    if (v < 3) {
      this.host.respond(conn, w.int16(results[0]!.errorCode));
      return;
    }
    w.int16(ErrorCode.NONE).int32(results.length);
    for (const res of results) w.nullableString(res.memberId).nullableString(res.instance).int16(res.errorCode);
    this.host.respond(conn, w);
  }

  /** Like Kafka: only a group without members can go, and its committed offsets go with it. */
  private handleDeleteGroups(conn: C, h: RequestHeader, r: Reader): void {
    const ids = readArray(r, () => r.string());
    const refusal = this.host.deleteGroupsRefusal();
    const w = new Writer(h.correlationId);
    w.int32(0).int32(ids.length); // throttle_time_ms
    for (const id of ids) {
      const group = this.groupsById.get(id);
      const errorCode =
        refusal ??
        (group === undefined
          ? ErrorCode.GROUP_ID_NOT_FOUND
          : group.members.size > 0
            ? ErrorCode.NON_EMPTY_GROUP
            : ErrorCode.NONE);
      if (errorCode === ErrorCode.NONE) {
        this.host.clearTimer(group!.rebalanceTimer);
        this.groupsById.delete(id);
      }
      w.nullableString(id).int16(errorCode);
    }
    this.host.respond(conn, w);
  }

  private group(groupId: string): Group {
    let group = this.groupsById.get(groupId);
    if (group === undefined) {
      group = {
        id: groupId,
        state: 'Empty',
        generation: 0,
        protocolType: null,
        protocol: null,
        leader: null,
        members: new Map(),
        pendingIds: new Set(),
        offsets: new Map(),
      };
      this.groupsById.set(groupId, group);
    }
    return group;
  }

  private prepareRebalance(group: Group): void {
    group.state = 'PreparingRebalance';
    // Members still waiting for an assignment of the old generation must rejoin.
    for (const m of group.members.values()) this.settleSync(m, ErrorCode.REBALANCE_IN_PROGRESS);
    const waitMs = Math.max(...[...group.members.values()].map((m) => m.rebalanceTimeoutMs), 0);
    this.host.clearTimer(group.rebalanceTimer);
    group.rebalanceTimer = this.host.timer(waitMs, () => {
      group.rebalanceTimer = undefined;
      // Whoever has not rejoined by now is out.
      for (const m of [...group.members.values()]) if (m.joinReply === undefined) this.dropMember(group, m);
      this.maybeCompleteJoin(group);
    });
  }

  private maybeCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    const members = [...group.members.values()];
    if (members.some((m) => m.joinReply === undefined)) return;
    this.host.clearTimer(group.rebalanceTimer);
    group.rebalanceTimer = undefined;
    group.generation++;
    if (members.length === 0) {
      Object.assign(group, { state: 'Empty', protocol: null, protocolType: null, leader: null });
      return;
    }
    group.protocol = chooseProtocol(members);
    if (group.leader === null || !group.members.has(group.leader)) group.leader = members[0]!.id;
    group.state = 'CompletingRebalance';
    const join = { generation: group.generation, protocol: group.protocol, leader: group.leader };
    for (const m of members) {
      m.assignment = null;
      const replyTo = m.joinReply!;
      m.joinReply = undefined;
      replyTo((id) => ({ ...join, members: id === join.leader ? members : [] }));
      this.touch(group, m);
    }
  }

  /** A member left or expired: the rest rebalance without it. */
  private removeMember(group: Group, memberId: string): void {
    const member = group.members.get(memberId);
    if (member === undefined) return;
    this.dropMember(group, member);
    if (group.members.size === 0) {
      this.host.clearTimer(group.rebalanceTimer);
      group.rebalanceTimer = undefined;
      group.generation++;
      Object.assign(group, { state: 'Empty', protocol: null, protocolType: null, leader: null });
    } else if (group.state === 'PreparingRebalance') {
      this.maybeCompleteJoin(group);
    } else {
      this.prepareRebalance(group);
    }
  }

  private dropMember(group: Group, member: Member): void {
    this.host.clearTimer(member.expiry);
    member.expiry = undefined;
    group.members.delete(member.id);
    if (group.leader === member.id) group.leader = null;
    const join = member.joinReply;
    member.joinReply = undefined;
    join?.(null);
    this.settleSync(member, ErrorCode.UNKNOWN_MEMBER_ID);
  }

  private settleSync(member: Member, errorCode: number): void {
    const reply = member.syncReply;
    member.syncReply = undefined;
    reply?.(errorCode);
  }

  /** Restarts the member's session clock; a member waiting in a join round is never expired. */
  private touch(group: Group, member: Member): void {
    this.host.clearTimer(member.expiry);
    member.expiry = this.host.timer(member.sessionTimeoutMs, () => {
      member.expiry = undefined;
      if (member.joinReply !== undefined) return;
      if (group.members.get(member.id) === member) this.removeMember(group, member.id);
    });
  }

  /**
   * Marks the connection busy until the returned function sends the answer,
   * so a held response keeps its place: Kafka answers each connection's
   * requests in order.
   */
  // ---- offsets: OffsetCommit, OffsetFetch, ListOffsets -------------------

  private handleOffsetCommit(conn: C, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const generation = v >= 1 ? r.int32() : -1;
    const memberId = v >= 1 ? r.string() : '';
    if (v >= 2 && v <= 4) r.int64(); // retention_time_ms: offsets are kept for the broker's life
    const topics = readArray(r, () => ({
      name: r.string(),
      partitions: readArray(r, () => {
        const partition = r.int32();
        const offset = Number(r.int64());
        if (v === 1) r.int64(); // commit timestamp
        return { partition, offset, metadata: r.nullableString() };
      }),
    }));

    const group = groupId === '' ? undefined : this.group(groupId);
    let error: number = ErrorCode.NONE;
    if (group === undefined) error = ErrorCode.INVALID_GROUP_ID;
    else if (generation < 0 && group.state === 'Empty')
      error = ErrorCode.NONE; // a commit from outside the group (admin tools)
    else if (group.state === 'CompletingRebalance') error = ErrorCode.REBALANCE_IN_PROGRESS;
    else if (!group.members.has(memberId)) error = ErrorCode.UNKNOWN_MEMBER_ID;
    else if (generation !== group.generation) error = ErrorCode.ILLEGAL_GENERATION;
    const member = group?.members.get(memberId);
    if (group !== undefined && member !== undefined) this.touch(group, member);

    const w = new Writer(h.correlationId);
    if (v >= 3) w.int32(0); // throttle_time_ms
    w.int32(topics.length);
    for (const t of topics) {
      w.nullableString(t.name).int32(t.partitions.length);
      for (const p of t.partitions) {
        let code = error;
        if (code === ErrorCode.NONE && !this.host.hasPartition(t.name, p.partition))
          code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        if (code === ErrorCode.NONE)
          group!.offsets.set(offsetKey(t.name, p.partition), { offset: p.offset, metadata: p.metadata });
        w.int32(p.partition).int16(code);
      }
    }
    this.host.respond(conn, w);
  }

  private handleOffsetFetch(conn: C, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const requested = readNullableArray(r, () => ({ name: r.string(), partitions: readArray(r, () => r.int32()) }));
    const offsets = this.groupsById.get(groupId)?.offsets ?? new Map<string, CommittedOffset>();
    // v2+: a null topic list asks for every committed offset of the group.
    const topics = requested ?? groupByTopic([...offsets.keys()].map(parseOffsetKey));

    const w = new Writer(h.correlationId);
    if (v >= 3) w.int32(0); // throttle_time_ms
    w.int32(topics.length);
    for (const t of topics) {
      w.nullableString(t.name).int32(t.partitions.length);
      for (const p of t.partitions) {
        const committed = offsets.get(offsetKey(t.name, p));
        // No committed offset is -1 with no error; the client then applies its reset policy.
        w.int32(p)
          .int64(committed?.offset ?? -1)
          .nullableString(committed?.metadata ?? '')
          .int16(ErrorCode.NONE);
      }
    }
    if (v >= 2) w.int16(ErrorCode.NONE);
    this.host.respond(conn, w);
  }
}

/** The protocol most members name first among those every member supports (Kafka's vote). */
function chooseProtocol(members: readonly Member[]): string {
  const common = members[0]!.protocols
    .map((p) => p.name)
    .filter((name) => members.every((m) => m.protocols.some((q) => q.name === name)));
  const votes = new Map<string, number>(common.map((name) => [name, 0]));
  for (const m of members) {
    const choice = m.protocols.find((p) => votes.has(p.name))!.name;
    votes.set(choice, votes.get(choice)! + 1);
  }
  let best = common[0]!;
  for (const name of common) if (votes.get(name)! > votes.get(best)!) best = name;
  return best;
}

function offsetKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

function parseOffsetKey(key: string): { topic: string; partition: number } {
  const colon = key.indexOf(':');
  return { partition: Number(key.slice(0, colon)), topic: key.slice(colon + 1) };
}

function groupByTopic(
  list: ReadonlyArray<{ topic: string; partition: number }>,
): Array<{ name: string; partitions: number[] }> {
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of list) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
  return [...byTopic].map(([name, partitions]) => ({ name, partitions }));
}

/** Consumer protocol subscription (kafkajs AssignerProtocol.MemberMetadata): version, topics, user data. */
function decodeSubscription(metadata: Buffer | undefined): string[] | null {
  if (metadata === undefined) return null;
  try {
    const r = new Reader(metadata);
    r.int16();
    return readArray(r, () => r.string());
  } catch (err) {
    if (err instanceof MalformedError) return null;
    throw err;
  }
}

/** Consumer protocol assignment (kafkajs AssignerProtocol.MemberAssignment): version, [topic, partitions], user data. */
function decodeAssignment(assignment: Buffer): Record<string, number[]> | null {
  if (assignment.length === 0) return {};
  try {
    const r = new Reader(assignment);
    r.int16();
    const out: Record<string, number[]> = {};
    for (const { topic, partitions } of readArray(r, () => ({
      topic: r.string(),
      partitions: readArray(r, () => r.int32()),
    })))
      out[topic] = partitions;
    return out;
  } catch (err) {
    if (err instanceof MalformedError) return null;
    throw err;
  }
}
