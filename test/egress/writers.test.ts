// "Nothing else writes": every module of src/ that can put bytes outside the
// process (files, sockets, Kafka, stdout/stderr) is one the egress knows. A
// new writer fails this test until it is listed here with the door its
// bytes pass; a listed door that stops checking fails it too.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');

// What can write, as it appears in source (type-only imports excluded).
const WRITES = [
  /^import (?!type )[^;]*from 'node:(net|http|https|tls|dgram|http2)'/m,
  /^import (?!type )[^;]*from '(ws|kafkajs)'/m,
  /\bprocess\.(stdout|stderr)\b/,
  /\bconsole\.(log|error|warn|info)\(/,
  /\b(writeFileSync|writeFile|appendFileSync|appendFile|createWriteStream|writeSync|writev|fdatasync|symlinkSync|copyFileSync)\b/,
  /\bwriteFileAtomic\(/,
];

/** Every writer of src/, and the door its bytes passed (or why they need none). */
const WRITERS: Record<string, string> = {
  'src/api/server.ts': 'API bodies: checks them itself (api)',
  'src/observability/logger.ts': 'log lines: checks them itself (log)',
  'src/observability/metrics-server.ts': 'metric lines: checks them itself (metrics)',
  'src/cli/main.ts': 'command output: checks it itself (cli)',
  'src/cli/subject-export.ts': 'the export document: checked against the number given (cli)',
  'src/audit/audit-log.ts': 'audit entries: checks them itself (audit); a refused field is written as [withheld]',
  'src/sink/jsonl.ts': 'records the pipeline checked (jsonl, stdout)',
  'src/sink/kafka.ts': 'records the pipeline checked (kafka); erasure requests of tokens',
  'src/sink/spool.ts':
    'lines the delivery layer checked (spool), and those re-sealed when a plaintext spool is migrated',
  'src/sink/kafka-log.ts': "nothing of its own: kafkajs's log lines go to the logger (log)",
  'src/sink/kafka-partitioner.ts': 'nothing: partitions by keyed call id',
  'src/sink/kafka-reader.ts': 'nothing out: reads topics (subject export)',
  'src/sink/kafka-follow.ts':
    'nothing out: follows the consent topic; deletes its own consumer groups (instance id and start time)',
  'src/source/ami-client.ts': "AMI actions to the PBX: the PBX's own values back to it, inside the boundary",
  'src/source/replay-server.ts': "a capture's bytes to the replay's own AMI client on 127.0.0.1",
  'src/atomic-file.ts': 'the primitive; its callers are listed',
  'src/consent/store.ts': 'consent entries: extensions (at most 6 digits), actors, times',
  'src/subject/suppression-store.ts': 'suppression entries: tokens and ids',
  'src/store-migrate.ts':
    'the same stores re-written in place, sealed (audit log, consent store and journal, suppression lists): their own content, encrypted',
  'src/lock-file.ts': 'lock files: pid, host, command, time',
  'src/cli/keys.ts': 'key material the operator asked for, into the keys file (mode 0600): a secret, never call data',
  'src/subject/shred.ts': 'shred tombstones: tenant ids and times',
  'src/reconcile/follow.ts': "the CDR store follower's position (file identity, offset): checks it itself (spool)",
  'src/reconcile/published-ids.ts': 'the ledger of keyed ids the sink acknowledged: checks it itself (spool)',
};

/** The doors: where each output kind is checked before its writer gets it. */
const DOORS: Record<string, RegExp> = {
  'src/pipeline.ts': /egress\.pass\(output, /, // kafka, jsonl, stdout: the sink's output kind
  'src/sink/delivery.ts': /\.pass\('spool'/,
  'src/api/server.ts': /\.pass\('api'/,
  'src/api/live-feed.ts': /\.pass\('ws'/,
  'src/audit/audit-log.ts': /\.pass\('audit'/,
  'src/observability/logger.ts': /\.pass\('log'/,
  'src/observability/metrics-server.ts': /\.pass\('metrics'/,
  'src/cli/main.ts': /\.pass\('cli'/,
  'src/egress/cli-output.ts': /\.pass\('cli'/,
  'src/cli/subject-export.ts': /cliMayWrite\(/,
  'src/cli/subject-rights.ts': /guardedOut\(/,
  'src/cli/rules.ts': /guardedOut\(/,
  'src/reconcile/follow.ts': /\.pass\('spool'/,
  'src/reconcile/published-ids.ts': /\.pass\('spool'/,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

t.test('every module that can write is a door, or listed with what it carries', async (t) => {
  const writers = files(SRC)
    .filter((f) => WRITES.some((re) => re.test(readFileSync(f, 'utf8'))))
    .map((f) => relative(ROOT, f))
    .sort();
  t.ok(writers.length >= 15, `${writers.length} writers found (the scan sees them)`);
  t.same(
    writers.filter((f) => !(f in WRITERS)),
    [],
    'no writer the egress does not know: route it through src/egress or list it here with what it carries',
  );
  t.same(
    Object.keys(WRITERS).filter((f) => !writers.includes(f)),
    [],
    'no listed writer that no longer writes (keep the list true)',
  );
});

t.test('each door checks its output kind', async (t) => {
  for (const [file, check] of Object.entries(DOORS))
    t.match(readFileSync(join(ROOT, file), 'utf8'), check, `${file} checks what it lets out`);
});

t.test('the scan finds a writer it was not told about', async (t) => {
  const probe = "import { connect } from 'node:net';\nexport const x = () => process.stdout.write('x');\n";
  t.ok(WRITES.some((re) => re.test(probe)));
  t.notOk(
    WRITES.some((re) => re.test("import type { Socket } from 'node:net';\n")),
    'type-only imports are not writers',
  );
});
