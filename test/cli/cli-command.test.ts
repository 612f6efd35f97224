// The command kit in process: usage lines made from the options, help that
// marks what is required, and what one command line comes back as (exit code,
// or the error and the command it belongs to).
import t from 'tap';
import { GatewayError } from '../../src/errors.js';
import {
  createRoot,
  optionalOption,
  runCommandLine,
  type CliCommand,
  type CliContext,
} from '../../src/cli/cli-command.js';
import { configOption, tenantOption } from '../../src/cli/shared-options.js';

interface Captured {
  ctx: CliContext;
  out: () => string;
  err: () => string;
}

function capture(): Captured {
  let out = '';
  let err = '';
  return {
    ctx: { env: {}, io: { stdout: (s) => void (out += s), stderr: (s) => void (err += s), stderrIsTty: false } },
    out: () => out,
    err: () => err,
  };
}

/** A small tree: `lookup` (required options, an operand), `things add|list` (a group), `fail` (throws what it is told). */
function tree(c: Captured, seen: unknown[] = []): CliCommand {
  const root = createRoot(c.ctx);
  root
    .command('lookup')
    .summary('looks a number up')
    .argument('<number>', 'the number')
    .addOption(configOption())
    .addOption(tenantOption())
    .addOption(optionalOption('--out <file>', 'where to', 'stdout'))
    .examples('callveil lookup --config c.yaml --tenant acme 1234')
    .run<{ config: string; tenant: string; out?: string }>((o, operands) => {
      seen.push({ o, operands });
      return 3;
    });
  const things = root.group('things', 'things');
  things
    .command('add')
    .synopsis('(<name> | --all)')
    .argument('[name]')
    .option('--all')
    .run(() => 0);
  things.command('list').run(() => 0);
  root
    .command('fail')
    .argument('<what>')
    .run((_o, [what]) => {
      if (what === 'usage') throw new GatewayError('GW_USAGE', 'fail needs a better reason');
      if (what === 'config') throw new GatewayError('GW_CONFIG_INVALID', 'invalid configuration');
      throw new TypeError('not ours');
    });
  return root;
}

t.test('usage lines: required options bare, optional ones bracketed, operands last; a synopsis wins', async (t) => {
  const root = tree(capture());
  const byPath = new Map([root, ...root.descendants()].map((c) => [c.path(), c.usageLine()]));
  t.same(Object.fromEntries(byPath), {
    '': 'callveil <command>',
    lookup: 'callveil lookup --config FILE --tenant TENANT [--out FILE] <number>',
    things: 'callveil things <command>',
    'things add': 'callveil things add (<name> | --all)',
    'things list': 'callveil things list',
    fail: 'callveil fail <what>',
  });
  t.same(
    root.leaves().map((c) => c.path()),
    ['lookup', 'things add', 'things list', 'fail'],
  );
});

t.test('an action gets camelCased typed options and its operands; its result is the exit code', async (t) => {
  const seen: unknown[] = [];
  const c = capture();
  const outcome = await runCommandLine(tree(c, seen), ['lookup', '--tenant', 'acme', '1234', '--config', 'c.yaml']);
  t.same(outcome, { code: 3 });
  t.same(seen, [{ o: { config: 'c.yaml', tenant: 'acme' }, operands: ['1234'] }]);
  t.equal(c.out() + c.err(), '', 'the kit itself prints nothing');
});

t.test('help: usage line, required options marked, what an absent option means, examples', async (t) => {
  const c = capture();
  t.same(await runCommandLine(tree(c), ['lookup', '--help']), { code: 0 });
  const help = c.out();
  t.match(help, /^Usage: callveil lookup --config FILE --tenant TENANT \[--out FILE\] <number>\n/);
  t.match(help, /--config <file> +the configuration file \(YAML or JSON\) \(required\)\n/);
  t.match(help, /--out <file> +where to \(default: stdout\)\n/);
  t.match(help, /\nExamples:\n {2}callveil lookup --config c\.yaml --tenant acme 1234\n/);
  t.equal(c.err(), '');
});

t.test('the top level lists every runnable command by its full path', async (t) => {
  const c = capture();
  t.same(await runCommandLine(tree(c), ['--help']), { code: 0 });
  for (const term of ['lookup <number>', 'things add [name]', 'things list', 'fail <what>'])
    t.match(c.out(), new RegExp(`\\n {2}${term.replace(/[[\]]/g, '\\$&')}( |\\n)`), term);
  t.notMatch(c.out(), /\n {2}things {2}/, 'the group itself is not listed');
});

t.test('usage errors: code 2, a GW_USAGE naming what is wrong, and the command it belongs to', async (t) => {
  const cases: [string[], string | RegExp, string][] = [
    [['lookup', '--confg', 'c.yaml'], "unknown option '--confg' (did you mean --config?)", 'lookup'],
    // Unknown options are named before missing required ones: the typo is the cause.
    [['lookup', '--tenannt', 'acme', '1'], "unknown option '--tenannt' (did you mean --tenant?)", 'lookup'],
    [['lookup', '--tenant', 'acme', '1'], 'lookup needs --config FILE', 'lookup'],
    [['lookup', '--config', 'c', '--tenant', 'acme'], "missing required argument 'number'", 'lookup'],
    [['lookup', '--config'], "option '--config <file>' argument missing", 'lookup'],
    [['lookup', '--config', 'c', '--tenant', 'a', '1', '2'], /^too many arguments for 'lookup'/, 'lookup'],
    [['lokup'], "unknown command 'lokup' (did you mean lookup?)", ''],
    [['things', 'ad'], "unknown command 'ad' (did you mean add?)", 'things'],
    [['fail', 'usage'], 'fail needs a better reason', 'fail'],
  ];
  for (const [argv, message, path] of cases) {
    const c = capture();
    const outcome = await runCommandLine(tree(c), argv);
    t.equal(outcome.code, 2, argv.join(' '));
    if (!('error' in outcome)) {
      t.fail(`${argv.join(' ')}: no error`);
      continue;
    }
    t.ok(outcome.error instanceof GatewayError && outcome.error.code === 'GW_USAGE', argv.join(' '));
    const text = (outcome.error as Error).message;
    if (typeof message === 'string') t.equal(text, message, argv.join(' '));
    else t.match(text, message, argv.join(' '));
    t.notMatch(text, /\n/, 'one line');
    t.equal(outcome.command.path(), path, `${argv.join(' ')}: belongs to "${path}"`);
    t.equal(c.out() + c.err(), '', 'nothing printed: the caller prints the outcome');
  }
});

t.test('what the user typed is not echoed when it looks like a phone number', async (t) => {
  for (const argv of [['07700 900999'], ['lookup', '--07700900999'], ['things', '+44 7700 900999']]) {
    const outcome = await runCommandLine(tree(capture()), argv);
    t.equal(outcome.code, 2);
    const text = 'error' in outcome ? (outcome.error as Error).message : '';
    t.match(text, "'(not shown)'", argv.join(' '));
    t.notMatch(text, /7700|900999/, argv.join(' '));
  }
});

t.test('other failures: code 1, the error as thrown', async (t) => {
  const config = await runCommandLine(tree(capture()), ['fail', 'config']);
  t.equal(config.code, 1);
  t.match('error' in config && config.error, { code: 'GW_CONFIG_INVALID' });
  const foreign = await runCommandLine(tree(capture()), ['fail', 'foreign']);
  t.equal(foreign.code, 1);
  t.type('error' in foreign && foreign.error, TypeError);
});

t.test('a group without its command: its help on stderr, code 2; the bare root likewise', async (t) => {
  for (const [argv, usage] of [
    [['things'], 'Usage: callveil things <command>'],
    [[], 'Usage: callveil <command>'],
  ] as const) {
    const c = capture();
    t.same(await runCommandLine(tree(c), argv), { code: 2 });
    t.equal(c.out(), '', 'nothing on stdout');
    t.match(c.err(), new RegExp(`^${usage.replace(/[<>]/g, '\\$&')}\n`));
  }
});
