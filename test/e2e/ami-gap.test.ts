// AMI link cut mid-call and restored, with a stretch of events lost in
// between (as when Asterisk kept running while the link was down): calls
// finished while connected are exact, calls whose end was lost are marked
// incomplete, nothing is invented.
import t from 'tap';
import { Writable } from 'node:stream';
import { connectSource, buildPipeline } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import type { CdrRecord } from '../../src/privacy/cdr-record.js';
import { createAmiClient } from '../../src/source/ami-client.js';
import { readCapture, splitCapture } from '../../src/source/capture.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { field } from '../../src/source/ami-message.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { twoTenantConfig } from '../helpers/configs.js';
import { idsOfRow } from '../helpers/record-ids.js';
import { captureFile, masterCsvFile, needlesForCapture, readMasterCsv } from '../helpers/ground-truth.js';
import { scanBuffers } from '../helpers/leak-scanner.js';

const BOUNDARY = Buffer.from('\r\n\r\n');

t.test('inbound-pstn with the link cut at 35% and 20% of the events lost', async (t) => {
  const capture = await readCapture(captureFile('inbound-pstn'));
  const { body } = splitCapture(capture);
  const dropAfter = Math.floor(body.length * 0.35);
  const skip = Math.floor(body.length * 0.2);
  // Where the server cuts and resumes (same rules as replay-server.ts).
  const a = body.lastIndexOf(BOUNDARY, dropAfter - BOUNDARY.length) + BOUNDARY.length;
  const b = body.indexOf(BOUNDARY, a + skip - 3) + BOUNDARY.length;

  // Which Cdr events the gateway will see, and which it will not.
  const seenCdr = new Set<string>();
  const lostCdr = new Set<string>();
  let offset = 0;
  const p = createFrameParser({
    onMessage: (m) => {
      if (field(m, 'event') === 'Cdr') (offset <= a || offset > b ? seenCdr : lostCdr).add(field(m, 'uniqueid'));
    },
  });
  for (let i = 0; i < body.length;) {
    const j = body.indexOf(BOUNDARY, i) + BOUNDARY.length;
    offset = j;
    p.push(body.subarray(i, j));
    i = j;
  }
  t.ok(lostCdr.size > 3, `the lost stretch holds Cdr events of ${lostCdr.size} legs`);

  const server = await startReplayServer({
    capture,
    username: 'u',
    secret: 's',
    dropAfterBytes: dropAfter,
    resumeOnReconnect: true,
    skipOnReconnectBytes: skip,
    holdOpen: true,
  });
  t.teardown(() => server.close());
  const logged: Buffer[] = [];
  const log = createLogger('debug', new Writable({ write: (c, _e, cb) => (logged.push(Buffer.from(c)), cb()) }));
  const records: CdrRecord[] = [];
  const loaded = twoTenantConfig();
  const pipeline = buildPipeline(
    loaded,
    {
      name: 'mem',
      write: (r) => (records.push(JSON.parse(r.value) as CdrRecord), Promise.resolve()),
      close: () => Promise.resolve(),
    },
    log,
  );
  const client = createAmiClient({
    host: '127.0.0.1',
    port: server.port,
    username: 'u',
    secret: 's',
    reconnectMinMs: 50,
    reconnectMaxMs: 200,
  });
  connectSource(client, pipeline, log);
  t.teardown(() => client.stop());
  client.start();
  await server.done;
  // `done` means written, not yet read: wait until the event stream goes quiet.
  for (let last = -1; last !== client.stats().messages;) {
    last = client.stats().messages;
    await new Promise((r) => setTimeout(r, 300));
  }
  await client.stop();
  await pipeline.drain();

  t.equal(client.stats().connects, 2, 'reconnected once');
  const master = readMasterCsv(masterCsvFile('inbound-pstn'));
  const complete = records.filter((r) => r.complete);
  const incomplete = records.filter((r) => !r.complete);
  const expectedExact = master.filter((row) => seenCdr.has(row.uniqueid));
  t.equal(complete.length, expectedExact.length, 'one exact record per CDR the gateway saw');
  const tenantOf = (row: { accountcode: string }) => (row.accountcode === '' ? 'acme' : row.accountcode);
  for (const row of expectedExact) {
    const id = idsOfRow(loaded, tenantOf(row), row).id;
    const rec = complete.find((r) => r.id === id);
    t.ok(rec, `exact record for ${row.uniqueid}: the id its Master.csv row gives`);
    t.same([rec?.disposition, rec?.billSec], [row.disposition, row.billsec]);
  }
  t.ok(incomplete.length > 0, `${incomplete.length} calls marked incomplete`);
  // Raw Linkedid -> the keyed call id its records carry.
  const lostByLinkedid = new Map(
    master
      .filter((row) => lostCdr.has(row.uniqueid))
      .map((row) => [row.linkedid, idsOfRow(loaded, tenantOf(row), row).callId]),
  );
  const lostCalls = new Set(lostByLinkedid.values());
  for (const r of incomplete) {
    t.ok(lostCalls.has(r.callId), `incomplete record ${r.id} is for a call whose CDR was lost (not invented)`);
    t.equal(r.disposition, 'UNKNOWN');
    t.equal(r.billSec, 0);
  }
  // A lost call whose first channel the gateway saw before the cut is never silent.
  const seenRootsBeforeCut = new Set<string>();
  const q = createFrameParser({
    onMessage: (m) =>
      field(m, 'event') === 'Newchannel' &&
      field(m, 'uniqueid') === field(m, 'linkedid') &&
      seenRootsBeforeCut.add(field(m, 'uniqueid')),
  });
  q.push(body.subarray(0, a));
  const mustBeMarked = [...lostByLinkedid]
    .filter(([linkedid, id]) => seenRootsBeforeCut.has(linkedid) && !complete.some((r) => r.callId === id))
    .map(([, id]) => id);
  for (const id of mustBeMarked)
    t.ok(
      incomplete.some((r) => r.callId === id),
      `call ${id} marked`,
    );
  t.match(Buffer.concat(logged).toString(), 'records marked incomplete');
  t.same(
    scanBuffers(needlesForCapture('inbound-pstn'), [
      { label: 'records', data: JSON.stringify(records) },
      { label: 'log', data: Buffer.concat(logged) },
    ]),
    [],
  );
});

t.test('calls ending without Cdr events: a warning names cdr_manager', async (t) => {
  // The capture with its Cdr events removed: as if cdr_manager were off.
  const text = (await readCapture(captureFile('basic-internal'))).toString('latin1');
  const capture = Buffer.from(
    text
      .split('\r\n\r\n')
      .filter((m) => !m.includes('Event: Cdr\r\n'))
      .join('\r\n\r\n'),
    'latin1',
  );
  const server = await startReplayServer({ capture, username: 'u', secret: 's', holdOpen: true });
  t.teardown(() => server.close());
  const logged: Buffer[] = [];
  const log = createLogger('info', new Writable({ write: (c, _e, cb) => (logged.push(Buffer.from(c)), cb()) }));
  const pipeline = buildPipeline(
    twoTenantConfig(),
    { name: 'mem', write: () => Promise.resolve(), close: () => Promise.resolve() },
    log,
  );
  const client = createAmiClient({ host: '127.0.0.1', port: server.port, username: 'u', secret: 's' });
  const stopWatch = connectSource(client, pipeline, log, 1000, 50);
  t.teardown(() => (stopWatch(), client.stop()));
  client.start();
  await server.done;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(pipeline.counts().cdrs, 0);
  t.ok(pipeline.counts().hangups >= 5);
  t.match(Buffer.concat(logged).toString(), 'is cdr_manager enabled and may the AMI user read cdr?');
});
