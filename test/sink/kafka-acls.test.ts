// The ACL list `callveil check` prints is the README's: every need of every
// command appears in the README's ACL table.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { aclSummary, kafkaAcls } from '../../src/sink/kafka-acls.js';

const README = readFileSync(resolve(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
const rows = README.split('\n').filter((l) => l.startsWith('| '));

t.test('every ACL need is a row of the README table, with its operations and when it applies', async (t) => {
  const acls = kafkaAcls('<prefix>', '<clientId>');
  for (const c of acls)
    for (const need of c.needs) {
      const resource = need.resource.replace(/"/g, '`');
      const row = rows.find(
        (r) => r.includes(resource) && r.includes(need.operations.join(', ')) && r.includes(need.when ?? 'always'),
      );
      t.ok(row, `${c.command}: ${need.resource} ${need.operations.join(', ')} (${need.when ?? 'always'})`);
    }
});

t.test('the summary check prints: one line per command', async (t) => {
  const lines = aclSummary(kafkaAcls('callveil', 'callveil'));
  t.equal(lines.length, 5);
  t.match(
    lines[3],
    /^subject export: Topic "callveil\.<tenant>\.cdr" Describe\+Read; Group prefixed "callveil-read-" Read\+Delete$/,
  );
});
