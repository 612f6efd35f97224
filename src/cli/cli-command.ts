// What every callveil command is made of: commander's Command plus the parts
// our help and errors need (examples, a synopsis where options are
// alternatives, the one usage line a usage error prints), and the runner that
// turns one command line into an exit code, or into the error and the command
// it belongs to. commander stays behind this file and the command files.
import { Command, CommanderError, Help, Option, type Argument } from 'commander';
import { GatewayError } from '../errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface CliIo {
  /** Command output only: records, reports, help. */
  stdout(text: string): void;
  /** Logs, progress, warnings and errors. */
  stderr(text: string): void;
  /** Progress is drawn only on a terminal. */
  readonly stderrIsTty: boolean;
}

export interface CliContext {
  readonly env: Env;
  readonly io: CliIo;
}

/** Adds a command group (or a few top-level commands) to the tree. One per file under src/cli/. */
export type Registrar = (root: CliCommand, ctx: CliContext) => void;

/** What a command's action gets: its options as commander parsed them (camelCased), its operands, and returns an exit code. */
export type Action<O> = (opts: O, operands: string[]) => Promise<number> | number;

// commander checks mandatory options before it looks for unknown ones, so `check --confg x.yaml` would say
// "--config not specified" instead of naming the typo. Required options are therefore recorded here,
// unmarked for commander, and checked by run() once commander has named any unknown option.
const REQUIRED = new WeakSet<Option>();

export class CliCommand extends Command {
  #examples: string[] = [];
  #synopsis: string | undefined;
  #exitCode = 0;

  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  override createHelp(): Help {
    return Object.assign(new CliHelp(), this.configureHelp());
  }

  override addOption(option: Option): this {
    if (option.mandatory) {
      REQUIRED.add(option);
      option.makeOptionMandatory(false);
    }
    return super.addOption(option);
  }

  /** The group `name` below this command, made on first use: several files add commands to `subject`. */
  group(name: string, summary: string): CliCommand {
    const found = this.commands.find((c) => c.name() === name);
    if (found !== undefined) return found as CliCommand;
    return this.command(name).summary(summary).description(summary).helpCommand(false);
  }

  /** Command lines shown under "Examples:" in this command's help; one or two say more than a page. */
  examples(...lines: string[]): this {
    if (this.#examples.length === 0)
      this.addHelpText('after', () => `\nExamples:\n${this.#examples.map((l) => `  ${l}`).join('\n')}`);
    this.#examples.push(...lines);
    return this;
  }

  /** The usage after the command's words, when the one made from its options cannot say it (alternatives). */
  synopsis(text: string): this {
    this.#synopsis = text;
    return this;
  }

  /** The words after `callveil`: `subject export`. */
  path(): string {
    if (this.parent === null) return '';
    const above = (this.parent as CliCommand).path();
    return above === '' ? this.name() : `${above} ${this.name()}`;
  }

  /** `callveil subject export --config FILE --tenant TENANT [--since TIME] [--out FILE] <number>` */
  usageLine(): string {
    const head = ['callveil', this.path()].filter((w) => w !== '').join(' ');
    if (this.#synopsis !== undefined) return `${head} ${this.#synopsis}`;
    if (this.commands.length > 0) return `${head} <command>`;
    const options = this.options.filter((o) => !o.hidden).map(optionUsage);
    const args = this.registeredArguments.map(argumentUsage);
    return [head, ...options, ...args].join(' ');
  }

  /** Makes `fn` this command's action: it gets the typed options and the operands, and its result is the exit code. */
  run<O>(fn: Action<O>): this {
    return this.action(async () => {
      const missing = this.options.find((o) => REQUIRED.has(o) && this.getOptionValue(o.attributeName()) === undefined);
      if (missing !== undefined)
        this.error(`${this.path()} needs ${optionUsage(missing)}`, { code: 'commander.missingMandatoryOptionValue' });
      this.root().#exitCode = await fn(this.opts() as O, this.processedArgs as string[]);
    });
  }

  /** Every command below this one, depth first, this one excluded. */
  descendants(): CliCommand[] {
    return this.commands.flatMap((c) => [c as CliCommand, ...(c as CliCommand).descendants()]);
  }

  /** The commands that run something (not groups), depth first. */
  leaves(): CliCommand[] {
    return this.descendants().filter((c) => c.commands.length === 0);
  }

  root(): CliCommand {
    return this.parent === null ? this : (this.parent as CliCommand).root();
  }

  /** The exit code the last action returned. */
  exitCode(): number {
    return this.#exitCode;
  }
}

/** `--config <file>` -> `--config FILE`; optional unless mandatory. */
function optionUsage(o: Option): string {
  const value = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1];
  const term = `${o.long ?? o.short}${value === undefined ? '' : ` ${value.toUpperCase()}`}`;
  return REQUIRED.has(o) ? term : `[${term}]`;
}

function argumentUsage(a: Argument): string {
  const name = `${a.name()}${a.variadic ? '...' : ''}`;
  return a.required ? `<${name}>` : `[${name}]`;
}

/** Help as an operator reads it: the usage line above, every leaf listed at the top, required options marked. */
class CliHelp extends Help {
  override commandUsage(cmd: Command): string {
    return (cmd as CliCommand).usageLine();
  }

  // The top level lists every command an operator can run (`subject export`), not only the groups.
  override visibleCommands(cmd: Command): Command[] {
    if (cmd.parent !== null) return super.visibleCommands(cmd);
    const helpCommand = super.visibleCommands(cmd).filter((c) => !cmd.commands.includes(c));
    return [...(cmd as CliCommand).leaves(), ...helpCommand];
  }

  override subcommandTerm(cmd: Command): string {
    const args = cmd.registeredArguments.map(argumentUsage).join(' ');
    // The implicit help command is outside the tree: its name is all it has.
    const name = cmd instanceof CliCommand && cmd.parent !== null ? cmd.path() : cmd.name();
    return args === '' ? name : `${name} ${args}`;
  }

  override optionDescription(option: Option): string {
    const base = super.optionDescription(option);
    // `.default(undefined, 'what happens')`: an option whose absence means something shows it like a default.
    const absent =
      option.defaultValue === undefined && option.defaultValueDescription !== undefined
        ? ` (default: ${option.defaultValueDescription})`
        : '';
    return `${base}${absent}${REQUIRED.has(option) ? ' (required)' : ''}`;
  }
}

/** An option that is optional, with what its absence means shown as its default in help. */
export function optionalOption(flags: string, description: string, whenAbsent: string): Option {
  return new Option(flags, description).default(undefined, whenAbsent);
}

export type Outcome =
  { readonly code: number } | { readonly code: number; readonly error: unknown; readonly command: CliCommand };

/** The user's own words in a commander message, when they look like a phone number: never echoed. */
const NUMBER_LIKE = /\d[\d\s().+-]{4,}\d/;

/**
 * Parses and runs one command line. Help and version are outcomes with code
 * 0; a group given without its command prints the group's help on stderr,
 * code 2. Usage errors (commander's and the GW_USAGE an action throws) come
 * back as a GatewayError GW_USAGE with the command they belong to, code 2;
 * any other error with code 1.
 */
export async function runCommandLine(root: CliCommand, argv: readonly string[]): Promise<Outcome> {
  let at: CliCommand = root;
  for (const cmd of [root, ...root.descendants()]) {
    cmd.exitOverride((err) => {
      at = cmd;
      throw err;
    });
  }
  root.hook('preAction', (_root, actionCommand) => {
    at = actionCommand as CliCommand;
  });
  try {
    await root.parseAsync(argv, { from: 'user' });
    return { code: root.exitCode() };
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return { code: 0 }; // --help, help, --version
      if (err.code === 'commander.help') return { code: 2 }; // a group without its command: its help went to stderr
      return {
        code: 2,
        error: new GatewayError('GW_USAGE', commanderMessage(err.message), { cause: err }),
        command: at,
      };
    }
    const usage = err instanceof GatewayError && err.code === 'GW_USAGE';
    return { code: usage ? 2 : 1, error: err, command: at };
  }
}

/** commander's `error: unknown option '--confg'\n(Did you mean --config?)` as one line of ours. */
function commanderMessage(message: string): string {
  return message
    .replace(/^error: /, '')
    .replace(/\n\(Did you mean (.+)\?\)/, ' (did you mean $1?)')
    .replace(/'([^']*)'/g, (quoted, value: string) => (NUMBER_LIKE.test(value) ? "'(not shown)'" : quoted))
    .replace(/\n/g, ' ');
}

/** The root of a command tree: named, writing to `io`, its own options only before the command. */
export function createRoot(ctx: CliContext): CliCommand {
  return new CliCommand('callveil')
    .enablePositionalOptions()
    .helpOption('-h, --help', 'print this help')
    .configureOutput({
      writeOut: (s) => ctx.io.stdout(s),
      writeErr: (s) => ctx.io.stderr(s),
      // Errors are printed by the caller from the outcome: one line, the usage line, where to read more.
      outputError: () => undefined,
    });
}

/**
 * Runs `argv` against a tree of only `registrars` and throws the error
 * instead of printing it: for in-process callers that pass argv (tests),
 * parsed by the same definitions as the command line.
 */
export async function runInProcess(
  registrars: readonly Registrar[],
  argv: readonly string[],
  ctx: CliContext,
): Promise<number> {
  const root = createRoot(ctx);
  for (const register of registrars) register(root, ctx);
  const outcome = await runCommandLine(root, argv);
  if ('error' in outcome) throw outcome.error;
  return outcome.code;
}
