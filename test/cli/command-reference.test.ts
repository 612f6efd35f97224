// The README's command table is the command tree's: one row per command with
// its usage line and summary, in the order `callveil --help` lists them. A
// command added, renamed or given a new option fails here until the README
// says so; the failure shows the table to paste.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildProgram } from '../../src/cli/program.js';

const root = buildProgram({ env: {}, io: { stdout: () => {}, stderr: () => {}, stderrIsTty: false } });
const readme = readFileSync(resolve(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

// A pipe inside a table cell must be escaped, code spans included.
const cell = (text: string) => text.replace(/\|/g, '\\|');

function expectedTable(): string {
  const help = root.createHelp();
  const inTree = new Set<unknown>(root.descendants());
  const helpCommand = help.visibleCommands(root).filter((c) => !inTree.has(c));
  const version = root.options.find((o) => o.long === '--version')!;
  return [
    '| command | what it does |',
    '|---|---|',
    ...root.leaves().map((c) => `| \`${cell(c.usageLine())}\` | ${cell(c.summary())} |`),
    ...helpCommand.map((c) => `| \`callveil ${help.subcommandTerm(c)}\` | ${cell(c.description())} |`),
    `| \`callveil ${version.long}\` | ${cell(version.description)} |`,
  ].join('\n');
}

/** The first table of the README's "## Commands" section. */
function readmeTable(): string {
  const section = readme.split('\n## Commands\n')[1]?.split('\n## ')[0] ?? '';
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  return start < 0 ? '' : lines.slice(start, end < 0 ? undefined : end).join('\n');
}

t.test("the README's command table matches the command definitions", async (t) => {
  t.equal(readmeTable(), expectedTable(), 'README.md "## Commands": replace the table with the expected one');
});

t.test('the table is not trivially equal: every command is in it', async (t) => {
  const table = readmeTable();
  for (const c of root.leaves()) t.match(table, `| \`callveil ${c.path()}`, c.path());
  t.ok(root.leaves().length >= 16);
});
