// Every command of the real tree, as an operator runs it (child processes on
// the compiled bin): its own --help, an unknown option named with exit 2 and
// one usage line, the version, suggestions for typos.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runCommandLine } from '../../src/cli/cli-command.js';
import { buildProgram } from '../../src/cli/program.js';
import { tempDir } from '../helpers/temp-dir.js';
import { SCHEMA_VERSION } from '../../src/version.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'callveil.js');
const dir = tempDir(t, 'program');

const root = buildProgram({ env: {}, io: { stdout: () => {}, stderr: () => {}, stderrIsTty: false } });
const commands = root.descendants();

function callveil(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Many command lines, a few processes at a time: each is a node start-up, and there are about a hundred. */
async function callveilEach(argvs: string[][], concurrency = 4): Promise<Run[]> {
  const runs: Run[] = new Array(argvs.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < argvs.length; i = next++) {
      runs[i] = await new Promise<Run>((done) => {
        const child = spawn(process.execPath, [BIN, ...argvs[i]!], {
          cwd: dir,
          env: { PATH: process.env.PATH ?? '' },
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 30_000,
        });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
        child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        child.on('close', (code) => done({ code, stdout, stderr }));
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return runs;
}

const words = (path: string) => (path === '' ? [] : path.split(' '));

/** A usage error as main prints it: the message, the command's usage line, where to read more; nothing else. */
function usageError(path: string, message: string): string {
  const cmd = [root, ...commands].find((c) => c.path() === path)!;
  return `callveil: ${message} [GW_USAGE]\nusage: ${cmd.usageLine()}\nsee ${['callveil', ...words(path), '--help'].join(' ')}\n`;
}

t.test('the tree holds the commands the README and the issue name', async (t) => {
  t.same(
    root.leaves().map((c) => c.path()),
    [
      'run',
      'replay',
      'demo',
      'reconcile',
      'schema',
      'check',
      'audit verify',
      'keys generate',
      'keys rotate',
      'keys migrate',
      'rules check',
      'token',
      'reveal',
      'subject export',
      'subject suppress',
      'subject unsuppress',
      'subject suppressions',
      'subject erase',
      'tenant shred',
      'completion',
    ],
  );
});

t.test('every command and group: --help exits 0 with its own usage line, its options and examples', async (t) => {
  const all = [root, ...commands];
  const runs = await callveilEach(all.map((c) => [...words(c.path()), '--help']));
  for (const [i, cmd] of all.entries()) {
    const path = cmd.path();
    const r = runs[i]!;
    t.equal(r.code, 0, `${path} --help`);
    t.equal(r.stderr, '', `${path} --help: nothing on stderr`);
    t.equal(r.stdout.split('\n')[0], `Usage: ${cmd.usageLine()}`, `${path} --help: its usage line first`);
    for (const o of cmd.options) t.match(r.stdout, `  ${o.flags}  `, `${path} --help names ${o.flags}`);
    if (cmd.commands.length === 0) {
      t.match(r.stdout, /\nExamples:\n( {2}(callveil|npm|source) .*\n){1,2}$/, `${path} --help: one or two examples`);
    } else {
      const listed = path === '' ? root.leaves() : commands.filter((c) => c.parent === cmd);
      for (const sub of listed) t.match(r.stdout, `\n  ${sub.path()}`, `${path} --help lists ${sub.path()}`);
    }
  }
  t.notOk(existsSync(join(dir, 'callveil-out')), 'demo --help did not run the demo');
});

t.test('help <command> prints what <command> --help prints', async (t) => {
  for (const path of ['run', 'subject']) t.same(callveil(['help', path]), callveil([path, '--help']), path);
});

t.test('every command: an unknown option is named, exit 2, the usage line, nothing on stdout', async (t) => {
  const all = [root, ...commands];
  const runs = await callveilEach(all.map((c) => [...words(c.path()), '--no-such-option']));
  for (const [i, cmd] of all.entries()) {
    const path = cmd.path();
    const r = runs[i]!;
    t.equal(r.code, 2, `${path} --no-such-option`);
    t.equal(r.stdout, '', `${path}: nothing on stdout`);
    t.equal(r.stderr, usageError(path, "unknown option '--no-such-option'"), `${path}: named, with its usage line`);
  }
});

t.test('typos get a suggestion; a missing value or operand is named', async (t) => {
  const cases: [string[], string, string][] = [
    [['run', '--confg', 'x.yaml'], 'run', "unknown option '--confg' (did you mean --config?)"],
    [['check', '--confg', 'x.yaml'], 'check', "unknown option '--confg' (did you mean --config?)"],
    [['replya', 'x.ami'], '', "unknown command 'replya' (did you mean replay?)"],
    [['subject', 'exprot'], 'subject', "unknown command 'exprot' (did you mean export?)"],
    [['run', 'extra'], 'run', "too many arguments for 'run'. Expected 0 arguments but got 1."],
    [['run', '--config'], 'run', "option '--config <file>' argument missing"],
    [['check'], 'check', 'check needs --config FILE'],
    [['replay'], 'replay', "missing required argument 'capture'"],
    [['token', '--config', 'c.yaml', '07700900999'], 'token', 'token needs --tenant TENANT'],
    [['frobnicate'], '', "unknown command 'frobnicate'"],
  ];
  const runs = await callveilEach(cases.map(([argv]) => argv));
  for (const [i, [argv, path, message]] of cases.entries()) {
    const r = runs[i]!;
    t.same([r.code, r.stdout, r.stderr], [2, '', usageError(path, message)], argv.join(' '));
  }
});

t.test('--version, -V and -v print the version', async (t) => {
  const { version } = JSON.parse(readFileSync(resolve(import.meta.dirname, '..', '..', 'package.json'), 'utf8'));
  const flags = ['--version', '-V', '-v'];
  const runs = await callveilEach(flags.map((f) => [f]));
  for (const [i, flag] of flags.entries()) {
    const r = runs[i]!;
    t.same([r.code, r.stdout, r.stderr], [0, `callveil ${version} (record schema ${SCHEMA_VERSION})\n`, ''], flag);
  }
});

t.test('no command, or a group without its command: that help on stderr, exit 2', async (t) => {
  const paths = ['', 'subject', 'tenant', 'audit', 'rules'];
  const runs = await callveilEach(paths.map(words));
  for (const [i, path] of paths.entries()) {
    const r = runs[i]!;
    t.equal(r.code, 2, `"${path}"`);
    t.equal(r.stdout, '');
    t.match(r.stderr, /^Usage: callveil (\w+ )?<command>\n/);
  }
});

t.test('a failure that is not a usage error: exit 1, one line, no usage', async (t) => {
  const r = callveil(['check', '--config', join(dir, 'missing.yaml')]);
  t.equal(r.code, 1);
  t.notMatch(r.stderr + r.stdout, /usage:|unexpected/);
  const shred = callveil(['token', '--config', join(dir, 'missing.yaml'), '--tenant', 'acme', '1004']);
  t.equal(shred.code, 1);
  t.match(shred.stderr, /^callveil: .* \[GW_CONFIG_\w+\]\n$/);
});

/** The words of an example as a shell splits them, up to a redirection, a pipe, `&&` or a comment. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const [w] of line.matchAll(/'[^']*'|[^\s']+/g)) {
    if (['#', '>', '|', '&&'].includes(w)) break;
    words.push(w.startsWith("'") ? w.slice(1, -1) : w);
  }
  return words;
}

t.test('every example in the help parses: real options, the right operands', async (t) => {
  let help = '';
  const io = { stdout: (s: string) => void (help += s), stderr: () => {}, stderrIsTty: false };
  const examples = buildProgram({ env: {}, io });
  for (const leaf of examples.leaves()) leaf.run(() => 0); // parse only: nothing runs
  let checked = 0;
  for (const leaf of examples.leaves()) {
    help = '';
    await runCommandLine(examples, [...words(leaf.path()), '--help']);
    const lines =
      help
        .split('\nExamples:\n')[1]
        ?.split('\n')
        .map((l) => l.trim()) ?? [];
    for (const line of lines.filter((l) => l.startsWith('callveil '))) {
      const argv = shellWords(line).slice(1);
      const outcome = await runCommandLine(examples, argv);
      t.same(outcome, { code: 0 }, line);
      t.equal(argv.slice(0, words(leaf.path()).length).join(' '), leaf.path(), `${line}: an example of ${leaf.path()}`);
      checked++;
    }
  }
  t.ok(checked >= 20, `${checked} examples checked`);
});
