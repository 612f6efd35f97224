// A built-in AMI server on 127.0.0.1 that replays a recorded capture byte for
// byte to whoever logs in, and answers the few actions the gateway sends the
// way Asterisk 20/22 do: Ping, CoreShowChannels and Status (with Variables)
// from the state the capture has reached, StopMixMonitor/StopMonitor with
// their MixMonitorStop/MonitorStop events, and "Permission denied" for an
// action the user's write= classes do not allow. Used by the embedded demo,
// `callveil replay`, benchmarks and tests.
import { createServer, type Server, type Socket } from 'node:net';
import { field, type AmiMessage } from './ami-message.js';
import { splitCapture } from './capture.js';
import { createFrameParser } from './frame-parser.js';

export type ReplayChunking = 'recorded' | 'random' | 'whole';

export interface ReplayServerOptions {
  readonly capture: Buffer;
  /** 0 (default): any free port. */
  readonly port?: number;
  readonly host?: '127.0.0.1';
  /** When both are unset any login is accepted. */
  readonly username?: string;
  readonly secret?: string;
  /**
   * How the body is cut into writes. Default: ~64 KiB slices ending at message
   * boundaries. 'recorded': one write per message, as Asterisk writes them.
   * 'whole': one write. 'random': random offsets (seeded), even mid-message.
   */
  readonly chunking?: ReplayChunking;
  readonly seed?: number;
  readonly pauseBetweenChunksMs?: number;
  /** Keep the connection open (answering actions) after the body was sent. */
  readonly holdOpen?: boolean;
  /** Destroy the socket after this many body bytes: an AMI link drop. */
  readonly dropAfterBytes?: number;
  /** How many connections dropAfterBytes applies to (default 1: only the first). */
  readonly drops?: number;
  /** A new connection continues at the message where the previous one stopped, instead of from the start. */
  readonly resumeOnReconnect?: boolean;
  /** With resumeOnReconnect: skip this many body bytes first (events Asterisk sent while the link was down). */
  readonly skipOnReconnectBytes?: number;
  /**
   * The first connection starts this many body bytes in (at the next message
   * boundary): what came before happened before the client connected, and
   * Status/CoreShowChannels answer from it.
   */
  readonly startAtBytes?: number;
  /** false: Ping goes unanswered (a dead link that still accepts bytes). Default true. */
  readonly answerPings?: boolean;
  /** The greeting line, when the capture has none (default `Asterisk Call Manager/9.0.0`, 22.x says 11.0.0). */
  readonly greeting?: string;
  /**
   * The user's manager.conf write= classes (default all). An action none of
   * whose classes the user has is refused with "Permission denied", as
   * Asterisk does: StopMixMonitor/StopMonitor need system or call, Status
   * system, call or reporting, CoreShowChannels system or reporting.
   */
  readonly write?: readonly string[];
  /** false: a stop is answered Success but no MixMonitorStop/MonitorStop event follows (unconfirmed). */
  readonly stopEvents?: boolean;
  /**
   * A replay runs far ahead of the PBX's own pace, so a stop can arrive after
   * the capture hung the channel up: true confirms it as Asterisk would have
   * at its pace (callveil replay). Default false: "No such channel".
   */
  readonly stopsAfterHangup?: boolean;
  /**
   * Asterisk's database (AstDB) at start: full key (`family/key`, e.g.
   * `callveil/acme/1001`) -> value. Shared by every connection, as the PBX's
   * one database is; DBPut/DBDel/DBGet/DBGetTree/DBDelTree answer from it.
   */
  readonly astdb?: Readonly<Record<string, string>>;
}

/** The write classes each action needs (any one of them), as Asterisk registers them. */
const ACTION_CLASSES: Readonly<Record<string, readonly string[]>> = {
  stopmixmonitor: ['system', 'call'],
  stopmonitor: ['system', 'call'],
  mixmonitor: ['system', 'call'],
  status: ['system', 'call', 'reporting'],
  coreshowchannels: ['system', 'reporting'],
  // main/db.c: reading needs system or reporting, writing system.
  dbget: ['system', 'reporting'],
  dbgettree: ['system', 'reporting'],
  dbput: ['system'],
  dbdel: ['system'],
  dbdeltree: ['system'],
};

export interface ReplayStats {
  readonly connections: number;
  readonly logins: number;
  readonly loginFailures: number;
  /** Connections that were sent the whole body. */
  readonly completed: number;
  readonly dropped: number;
}

export interface ReplayServer {
  readonly port: number;
  /** Resolves the first time a connection has been sent the whole body. */
  readonly done: Promise<void>;
  /** Every action received, in order, over all connections; keys lower-cased, secrets '***'. */
  actionsReceived(): Array<Record<string, string>>;
  stats(): ReplayStats;
  /** The AstDB now: full key (`family/key`) -> value. */
  astdb(): Record<string, string>;
  close(): Promise<void>;
}

const DEFAULT_GREETING = Buffer.from('Asterisk Call Manager/9.0.0\r\n');
const BOUNDARY = Buffer.from('\r\n\r\n');
const SLICE_BYTES = 64 * 1024;
const RANDOM_MAX_SLICE = 16 * 1024;

interface Shared {
  readonly opts: ReplayServerOptions;
  readonly greeting: Buffer;
  readonly body: Buffer;
  readonly actions: Array<Record<string, string>>;
  readonly sockets: Set<Socket>;
  readonly random: () => number;
  readonly stats: { connections: number; logins: number; loginFailures: number; completed: number; dropped: number };
  resumeAt: number;
  /** Recordings stopped by an action: uniqueid -> body offset the stop happened at. */
  readonly stops: Map<string, number>;
  /** AstDB: full key without the leading slash -> value. */
  readonly db: Map<string, string>;
  markDone(): void;
}

export async function startReplayServer(opts: ReplayServerOptions): Promise<ReplayServer> {
  const { greeting, body } = splitCapture(opts.capture);
  let markDone!: () => void;
  const done = new Promise<void>((resolve) => (markDone = resolve));
  const shared: Shared = {
    opts,
    greeting:
      greeting.length > 0
        ? greeting
        : opts.greeting !== undefined
          ? Buffer.from(`${opts.greeting}\r\n`)
          : DEFAULT_GREETING,
    body,
    actions: [],
    sockets: new Set(),
    random: mulberry32(opts.seed ?? 1),
    stats: { connections: 0, logins: 0, loginFailures: 0, completed: 0, dropped: 0 },
    resumeAt: 0,
    stops: new Map(),
    db: new Map(Object.entries(opts.astdb ?? {})),
    markDone,
  };
  const server = createServer((socket) => serveConnection(shared, socket));
  await listen(server, opts.port ?? 0, opts.host ?? '127.0.0.1');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    done,
    actionsReceived: () => shared.actions.map((a) => ({ ...a })),
    stats: () => ({ ...shared.stats }),
    astdb: () => Object.fromEntries(shared.db),
    close: () => closeServer(server, shared.sockets),
  };
}

// One client: greeting, login, then the body interleaved with responses.
interface Connection {
  readonly socket: Socket;
  readonly body: Buffer;
  loggedIn: boolean;
  closed: boolean;
  /** Responses waiting for a message boundary in the body. */
  readonly queue: Buffer[];
  endAfterQueue: boolean;
  wake: (() => void) | undefined;
  /** Body bytes sent so far on this connection: what the PBX "has done" by now. */
  pos: number;
  /** The PBX state Status and stops answer from, built as the body goes out (on first use). */
  pbx: PbxTracker | undefined;
}

function tracker(conn: Connection): PbxTracker {
  return (conn.pbx ??= new PbxTracker(conn.body));
}

function serveConnection(shared: Shared, socket: Socket): void {
  shared.stats.connections++;
  shared.sockets.add(socket);
  const conn: Connection = {
    socket,
    loggedIn: false,
    closed: false,
    queue: [],
    endAfterQueue: false,
    wake: undefined,
    pos: 0,
    pbx: undefined,
    body: shared.body,
  };
  socket.setNoDelay(true);
  socket.on('error', () => undefined); // resets by the client are normal here
  socket.on('close', () => {
    conn.closed = true;
    shared.sockets.delete(socket);
    wake(conn);
  });
  const parser = createFrameParser({ onMessage: (msg) => onAction(shared, conn, msg) });
  socket.on('data', (chunk: Buffer) => parser.push(chunk));
  socket.write(shared.greeting);
}

function onAction(shared: Shared, conn: Connection, msg: AmiMessage): void {
  if (conn.closed || conn.endAfterQueue) return;
  shared.actions.push(recordable(msg));
  const action = field(msg, 'action').toLowerCase();
  const id = msg['actionid'] === undefined ? undefined : field(msg, 'actionid');
  if (!conn.loggedIn) {
    if (action === 'login') login(shared, conn, msg, id);
    else if (action === 'logoff')
      endWith(
        conn,
        frame([
          ['Response', 'Goodbye'],
          ['ActionID', id],
          ['Message', 'Thanks for all the fish.'],
        ]),
      );
    else
      conn.socket.write(
        frame([
          ['Response', 'Error'],
          ['ActionID', id],
          ['Message', 'Permission denied'],
        ]),
      );
    return;
  }
  const classes = ACTION_CLASSES[action];
  const write = shared.opts.write;
  if (
    classes !== undefined &&
    write !== undefined &&
    !write.includes('all') &&
    !classes.some((c) => write.includes(c))
  ) {
    conn.queue.push(
      frame([
        ['Response', 'Error'],
        ['ActionID', id],
        ['Message', 'Permission denied'],
      ]),
    );
    wake(conn);
    return;
  }
  const reply = answer(shared, conn, action, id, conn.pos, msg);
  if (reply === undefined) return;
  conn.queue.push(reply);
  if (action === 'logoff') conn.endAfterQueue = true;
  wake(conn);
}

function login(shared: Shared, conn: Connection, msg: AmiMessage, id: string | undefined): void {
  const { username, secret } = shared.opts;
  const wrong =
    (username !== undefined && field(msg, 'username') !== username) ||
    (secret !== undefined && field(msg, 'secret') !== secret);
  if (wrong) {
    shared.stats.loginFailures++;
    endWith(
      conn,
      frame([
        ['Response', 'Error'],
        ['ActionID', id],
        ['Message', 'Authentication failed'],
      ]),
    );
    return;
  }
  shared.stats.logins++;
  conn.loggedIn = true;
  conn.socket.write(
    frame([
      ['Response', 'Success'],
      ['ActionID', id],
      ['Message', 'Authentication accepted'],
    ]),
  );
  void streamBody(shared, conn);
}

/** The response to an action after login; undefined for no response at all. */
function answer(
  shared: Shared,
  conn: Connection,
  action: string,
  id: string | undefined,
  pos: number,
  msg: AmiMessage,
): Buffer | undefined {
  switch (action) {
    case 'ping':
      if (shared.opts.answerPings === false) return undefined;
      return frame([
        ['Response', 'Success'],
        ['ActionID', id],
        ['Ping', 'Pong'],
        ['Timestamp', (Date.now() / 1000).toFixed(6)],
      ]);
    case 'logoff':
      return frame([
        ['Response', 'Goodbye'],
        ['ActionID', id],
        ['Message', 'Thanks for all the fish.'],
      ]);
    case 'login':
      return frame([
        ['Response', 'Success'],
        ['ActionID', id],
        ['Message', 'Already authenticated'],
      ]);
    case 'stopmixmonitor':
    case 'stopmonitor':
      return stopRecording(shared, conn, action, id, pos, field(msg, 'channel'));
    case 'status':
      return status(shared, conn, id, pos, field(msg, 'variables'));
    case 'dbput':
    case 'dbget':
    case 'dbdel':
    case 'dbdeltree':
    case 'dbgettree':
      return astdb(shared.db, action, id, msg);
    case 'coreshowchannels': {
      // The channels the capture has up at this point, as Asterisk would list them.
      const live = liveChannelsAt(shared.body, pos);
      return Buffer.concat([
        frame([
          ['Response', 'Success'],
          ['ActionID', id],
          ['EventList', 'start'],
          ['Message', 'Channels will follow'],
        ]),
        ...[...live].map(([uniqueid, linkedid]) =>
          frame([
            ['Event', 'CoreShowChannel'],
            ['ActionID', id],
            ['Uniqueid', uniqueid],
            ['Linkedid', linkedid],
          ]),
        ),
        frame([
          ['Event', 'CoreShowChannelsComplete'],
          ['ActionID', id],
          ['EventList', 'Complete'],
          ['ListItems', String(live.size)],
        ]),
      ]);
    }
    default:
      return frame([
        ['Response', 'Error'],
        ['ActionID', id],
        ['Message', 'Invalid/unknown command'],
      ]);
  }
}

async function streamBody(shared: Shared, conn: Connection): Promise<void> {
  const { body, opts } = shared;
  let pos = opts.resumeOnReconnect ? shared.resumeAt : 0;
  if (pos === 0 && opts.startAtBytes) pos = nextBoundary(body, Math.min(body.length, opts.startAtBytes));
  if (opts.resumeOnReconnect && pos > 0 && opts.skipOnReconnectBytes)
    pos = nextBoundary(body, Math.min(body.length, pos + opts.skipOnReconnectBytes));
  conn.pos = pos;
  const dropping = opts.dropAfterBytes !== undefined && shared.stats.dropped < (opts.drops ?? 1);
  const dropAt = dropping ? pos + opts.dropAfterBytes! : Infinity;
  let counted = false;
  while (!conn.closed) {
    if (conn.queue.length > 0 && atBoundary(body, pos)) {
      await write(conn, Buffer.concat(conn.queue.splice(0)));
      if (conn.endAfterQueue) break;
      continue;
    }
    if (pos < body.length) {
      const end = Math.min(sliceEnd(shared, pos, conn.queue.length > 0), dropAt);
      await write(conn, body.subarray(pos, end));
      pos = end;
      conn.pos = pos;
      if (opts.resumeOnReconnect) shared.resumeAt = lastBoundary(body, pos);
      if (pos >= dropAt) {
        shared.stats.dropped++;
        // Flush what was written, then cut: the client has read exactly dropAfterBytes, so tests know what it saw.
        await new Promise<void>((resolve) => conn.socket.end(resolve));
        conn.socket.destroy();
        return;
      }
      if (pos < body.length && opts.pauseBetweenChunksMs) await sleep(opts.pauseBetweenChunksMs);
      // Let the client's actions in between slices, as a real PBX interleaves responses with events.
      else await new Promise<void>((resolve) => setImmediate(resolve));
      continue;
    }
    if (!counted) {
      counted = true;
      shared.stats.completed++;
      shared.markDone();
    }
    if (!opts.holdOpen && conn.queue.length === 0) break;
    if (conn.queue.length === 0) await new Promise<void>((resolve) => (conn.wake = resolve));
  }
  conn.socket.end();
}

/** A channel as the capture has it at some point: what Status reports. Raw. */
interface PbxChannel {
  readonly uniqueid: string;
  linkedid: string;
  channel: string;
  state: string;
  callerIdNum: string;
  accountCode: string;
  context: string;
  exten: string;
  bridge: string;
  /** Body offset of the latest MixMonitorStart / MonitorStart; -1 when not recording. */
  mixStartAt: number;
  monitorStartAt: number;
  readonly vars: Map<string, string>;
}

/** The PBX's channels as the capture has them up to some point; moves forward only. */
class PbxTracker {
  readonly live = new Map<string, PbxChannel>();
  /** Channels hung up (the latest 10,000), for a replay running ahead of the PBX's pace. */
  readonly ended = new Map<string, PbxChannel>();
  private parsedTo = 0;
  /** End offset of the message being parsed (messages end at \r\n\r\n). */
  private offset = 0;
  private readonly parser = createFrameParser({ onMessage: (m) => this.onMessage(m) });
  constructor(private readonly body: Buffer) {}

  /** Takes in body[parsedTo, pos) up to its last message boundary. */
  advance(pos: number): this {
    const to = lastBoundary(this.body, pos);
    if (to > this.parsedTo) {
      this.parser.push(this.body.subarray(this.parsedTo, to));
      this.parsedTo = to;
    }
    return this;
  }

  byName(name: string): PbxChannel | undefined {
    for (const ch of this.live.values()) if (ch.channel === name) return ch;
    return undefined;
  }

  private onMessage(m: AmiMessage): void {
    this.offset = this.body.indexOf(BOUNDARY, this.offset) + BOUNDARY.length;
    const e = field(m, 'event');
    const u = field(m, 'uniqueid');
    if (u === '' || e === '') return;
    let ch = this.live.get(u);
    if (e === 'Hangup') {
      if (ch !== undefined) {
        this.live.delete(u);
        if (this.ended.size >= 10_000) this.ended.delete(this.ended.keys().next().value!);
        this.ended.set(u, ch);
      }
      return;
    }
    if (ch === undefined) {
      if (e !== 'Newchannel') return;
      ch = {
        uniqueid: u,
        linkedid: field(m, 'linkedid') || u,
        channel: field(m, 'channel'),
        state: field(m, 'channelstate'),
        callerIdNum: field(m, 'calleridnum'),
        accountCode: '',
        context: field(m, 'context'),
        exten: field(m, 'exten'),
        bridge: '',
        mixStartAt: -1,
        monitorStartAt: -1,
        vars: new Map(),
      };
      this.live.set(u, ch);
    }
    if (field(m, 'linkedid') !== '') ch.linkedid = field(m, 'linkedid');
    if (field(m, 'channel') !== '') ch.channel = field(m, 'channel');
    if (field(m, 'channelstate') !== '') ch.state = field(m, 'channelstate');
    if (field(m, 'accountcode') !== '') ch.accountCode = field(m, 'accountcode');
    if (e === 'VarSet') {
      // Bounded: a channel's variables, not every value ever set.
      if (ch.vars.size < 256 || ch.vars.has(field(m, 'variable')))
        ch.vars.set(field(m, 'variable').replace(/^_{1,2}/, ''), field(m, 'value'));
    } else if (e === 'BridgeEnter') ch.bridge = field(m, 'bridgeuniqueid');
    else if (e === 'BridgeLeave') ch.bridge = '';
    else if (e === 'MixMonitorStart') ch.mixStartAt = this.offset;
    else if (e === 'MixMonitorStop') ch.mixStartAt = -1;
    else if (e === 'MonitorStart') ch.monitorStartAt = this.offset;
    else if (e === 'MonitorStop') ch.monitorStartAt = -1;
  }
}

/** Whether a recording runs on the channel now: started in the capture and not stopped by an action since. */
function recordingRuns(shared: Shared, ch: PbxChannel, kind: 'mix' | 'monitor'): boolean {
  const at = kind === 'mix' ? ch.mixStartAt : ch.monitorStartAt;
  if (at < 0) return false;
  const stopped = shared.stops.get(`${kind}|${ch.uniqueid}`);
  return stopped === undefined || stopped < at;
}

/** StopMixMonitor / StopMonitor as app_mixmonitor and res_monitor answer them. */
function stopRecording(
  shared: Shared,
  conn: Connection,
  action: string,
  id: string | undefined,
  pos: number,
  name: string,
): Buffer {
  const error = (message: string) =>
    frame([
      ['Response', 'Error'],
      ['ActionID', id],
      ['Message', message],
    ]);
  if (name === '') return error('No channel specified');
  const pbx = tracker(conn).advance(pos);
  let ch = pbx.byName(name);
  // A replay runs far ahead of the PBX's pace: a channel that hung up since is stopped as Asterisk would
  // have stopped it at its own pace (stopsAfterHangup).
  if (ch === undefined && shared.opts.stopsAfterHangup === true)
    ch = [...pbx.ended.values()].reverse().find((c) => c.channel === name);
  if (ch === undefined) return error('No such channel');
  const kind = action === 'stopmixmonitor' ? 'mix' : 'monitor';
  if (!recordingRuns(shared, ch, kind)) return error(kind === 'mix' ? 'Could not stop MixMonitor' : 'No monitor');
  shared.stops.set(`${kind}|${ch.uniqueid}`, pos);
  const ok = frame([
    ['Response', 'Success'],
    ['ActionID', id],
  ]);
  if (shared.opts.stopEvents === false) return ok;
  // Asterisk publishes the stop event before it writes the response.
  return Buffer.concat([
    frame([
      ['Event', kind === 'mix' ? 'MixMonitorStop' : 'MonitorStop'],
      ['Privilege', 'call,all'],
      ['Channel', ch.channel],
      ['ChannelState', ch.state || '6'],
      ['AccountCode', ch.accountCode],
      ['Context', ch.context],
      ['Exten', ch.exten],
      ['Uniqueid', ch.uniqueid],
      ['Linkedid', ch.linkedid],
    ]),
    ok,
  ]);
}

/**
 * The AstDB actions as main/db.c answers them in Asterisk 22: errors "No
 * family specified." / "No key specified." / "Database entry not found",
 * acks with their messages, DBGet and DBGetTree as lists (the tree's items
 * split at the last slash: Family `callveil/acme`, Key `1001`).
 */
function astdb(db: Map<string, string>, action: string, id: string | undefined, msg: AmiMessage): Buffer {
  const family = field(msg, 'family').replace(/^\/+|\/+$/g, '');
  const key = field(msg, 'key').replace(/^\/+|\/+$/g, '');
  const reply = (response: 'Success' | 'Error', message: string) =>
    frame([
      ['Response', response],
      ['ActionID', id],
      ['Message', message],
    ]);
  if (family === '') return reply('Error', action === 'dbput' ? 'No family specified' : 'No family specified.');
  const full = `${family}/${key}`;
  const tree = (prefix: string) => [...db.keys()].filter((k) => k === prefix || k.startsWith(`${prefix}/`));
  switch (action) {
    case 'dbput':
      if (key === '') return reply('Error', 'No key specified');
      db.set(full, field(msg, 'val'));
      return reply('Success', 'Updated database successfully');
    case 'dbdel':
      if (key === '') return reply('Error', 'No key specified.');
      if (!db.delete(full)) return reply('Error', 'Database entry not found');
      return reply('Success', 'Key deleted successfully');
    case 'dbdeltree': {
      const gone = tree(key === '' ? family : full);
      for (const k of gone) db.delete(k);
      return gone.length === 0
        ? reply('Error', 'Database entry not found')
        : reply('Success', 'Key tree deleted successfully');
    }
    case 'dbget': {
      if (key === '') return reply('Error', 'No key specified.');
      const val = db.get(full);
      if (val === undefined) return reply('Error', 'Database entry not found');
      return listAnswer(id, 'DBGetResponse', 'DBGetComplete', [[family, key, val]]);
    }
    default: {
      const rows = tree(key === '' ? family : full)
        .sort()
        .map((k) => {
          const cut = k.lastIndexOf('/');
          return [k.slice(0, cut), k.slice(cut + 1), db.get(k)!] as const;
        });
      if (rows.length === 0) return reply('Error', 'Database entry not found');
      return listAnswer(id, 'DBGetTreeResponse', 'DBGetTreeComplete', rows);
    }
  }
}

function listAnswer(
  id: string | undefined,
  item: string,
  complete: string,
  rows: ReadonlyArray<readonly [string, string, string]>,
): Buffer {
  return Buffer.concat([
    frame([
      ['Response', 'Success'],
      ['ActionID', id],
      ['EventList', 'start'],
      ['Message', 'Result will follow'],
    ]),
    ...rows.map(([family, key, val]) =>
      frame([
        ['Event', item],
        ['Family', family],
        ['Key', key],
        ['Val', val],
        ['ActionID', id],
      ]),
    ),
    frame([
      ['Event', complete],
      ['ActionID', id],
      ['EventList', 'Complete'],
      ['ListItems', String(rows.length)],
    ]),
  ]);
}

/** Status with Variables: one item per channel, `Variable: NAME=value` per variable asked for. */
function status(shared: Shared, conn: Connection, id: string | undefined, pos: number, variables: string): Buffer {
  const live = tracker(conn).advance(pos).live;
  const names = variables
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  const items = [...live.values()].map((ch) =>
    frame([
      ['Event', 'Status'],
      ['Privilege', 'Call'],
      ['ActionID', id],
      ['Channel', ch.channel],
      ['ChannelState', ch.state || '6'],
      ['CallerIDNum', ch.callerIdNum],
      ['AccountCode', ch.accountCode],
      ['Context', ch.context],
      ['Exten', ch.exten],
      ['Uniqueid', ch.uniqueid],
      ['Linkedid', ch.linkedid],
      ['BridgeID', ch.bridge],
      ...names.map((n) => ['Variable', `${n}=${ch.vars.get(n.replace(/^_{1,2}/, '')) ?? ''}`] as const),
    ]),
  );
  return Buffer.concat([
    frame([
      ['Response', 'Success'],
      ['ActionID', id],
      ['EventList', 'start'],
      ['Message', 'Channel status will follow'],
    ]),
    ...items,
    frame([
      ['Event', 'StatusComplete'],
      ['ActionID', id],
      ['EventList', 'Complete'],
      ['ListItems', String(items.length)],
      ['Items', String(items.length)],
    ]),
  ]);
}

/** Uniqueid -> Linkedid of every channel created and not yet hung up in body[0, pos). */
function liveChannelsAt(body: Buffer, pos: number): Map<string, string> {
  const live = new Map<string, string>();
  const parser = createFrameParser({
    onMessage: (m) => {
      const e = field(m, 'event');
      if (e === 'Newchannel') live.set(field(m, 'uniqueid'), field(m, 'linkedid'));
      else if (e === 'Hangup') live.delete(field(m, 'uniqueid'));
    },
  });
  parser.push(body.subarray(0, lastBoundary(body, pos)));
  parser.end();
  return live;
}

/** Where the slice starting at `pos` ends; `boundary` forces it to end at a message boundary. */
function sliceEnd(shared: Shared, pos: number, boundary: boolean): number {
  const { body } = shared;
  switch (shared.opts.chunking) {
    case 'whole':
      return body.length;
    case 'recorded':
      return nextBoundary(body, pos);
    case 'random': {
      if (boundary) return nextBoundary(body, pos);
      const size = 1 + Math.floor(Math.exp(shared.random() * Math.log(RANDOM_MAX_SLICE)));
      return Math.min(body.length, pos + size);
    }
    default: {
      const target = pos + SLICE_BYTES;
      if (target >= body.length) return body.length;
      const last = body.lastIndexOf(BOUNDARY, target - BOUNDARY.length);
      return last !== -1 && last + BOUNDARY.length > pos ? last + BOUNDARY.length : nextBoundary(body, pos);
    }
  }
}

function atBoundary(body: Buffer, pos: number): boolean {
  return pos === 0 || pos >= body.length || (pos >= 4 && body.compare(BOUNDARY, 0, 4, pos - 4, pos) === 0);
}

/** The end of the message that contains `pos` (or starts at it). */
function nextBoundary(body: Buffer, pos: number): number {
  const i = body.indexOf(BOUNDARY, Math.max(0, pos - 3));
  return i === -1 ? body.length : i + BOUNDARY.length;
}

/** The start of the message that contains `pos`. */
function lastBoundary(body: Buffer, pos: number): number {
  if (pos >= body.length) return body.length;
  if (pos < BOUNDARY.length) return 0;
  const i = body.lastIndexOf(BOUNDARY, pos - BOUNDARY.length);
  return i === -1 ? 0 : i + BOUNDARY.length;
}

function write(conn: Connection, buf: Buffer): Promise<void> {
  if (conn.closed || conn.socket.write(buf)) return Promise.resolve();
  return new Promise((resolve) => {
    const settle = (): void => {
      conn.socket.off('drain', settle);
      conn.socket.off('close', settle);
      resolve();
    };
    conn.socket.on('drain', settle);
    conn.socket.on('close', settle);
  });
}

function endWith(conn: Connection, last: Buffer): void {
  conn.endAfterQueue = true;
  conn.socket.end(last);
}

function wake(conn: Connection): void {
  const fn = conn.wake;
  conn.wake = undefined;
  fn?.();
}

function frame(fields: ReadonlyArray<readonly [string, string | undefined]>): Buffer {
  let out = '';
  for (const [k, v] of fields) if (v !== undefined) out += `${k}: ${v}\r\n`;
  return Buffer.from(`${out}\r\n`);
}

function recordable(msg: AmiMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(msg)) out[k] = k === 'secret' ? '***' : typeof v === 'string' ? v : v.join(', ');
  return out;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Small seeded PRNG so a 'random' replay can be repeated exactly. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
