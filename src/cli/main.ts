// `callveil` command line: parses arguments and runs the command, and turns
// the outcome into an exit code and at most a few lines on stderr. stdout
// carries command output only (records, reports, help); logs and errors go
// to stderr.
import { CLI_WITHHELD } from '../egress/cli-output.js';
import { defaultEgress } from '../egress/egress.js';
import { GatewayError } from '../errors.js';
import { runCommandLine, type CliIo, type Env, type Outcome } from './cli-command.js';
import { buildProgram } from './program.js';

// What commands print passes the egress (against the raw values of calls this process saw, e.g. in a replay).
const checked = (write: (s: string) => unknown) => (s: string) =>
  void (defaultEgress().pass('cli', s) ? write(s) : process.stderr.write(`callveil: ${CLI_WITHHELD}\n`));

const processIo: CliIo = {
  stdout: checked((s) => process.stdout.write(s)),
  stderr: checked((s) => process.stderr.write(s)),
  get stderrIsTty() {
    return process.stderr.isTTY === true;
  },
};

export async function main(argv: readonly string[], env: Env = process.env, io: CliIo = processIo): Promise<number> {
  // -V and --version are commander's; -v is what many people type first.
  const args = argv[0] === '-v' ? ['--version', ...argv.slice(1)] : argv;
  const outcome = await runCommandLine(buildProgram({ env, io }), args);
  if ('error' in outcome) report(outcome, io);
  return outcome.code;
}

function report(o: Extract<Outcome, { error: unknown }>, io: CliIo): void {
  const err = o.error;
  if (err instanceof GatewayError) {
    // Errors are built without caller data.
    io.stderr(`callveil: ${err.message} [${err.code}]\n`);
    // A usage error gets the command's usage line and where to read more, not its whole help.
    if (err.code === 'GW_USAGE')
      io.stderr(
        `usage: ${o.command.usageLine()}\nsee ${['callveil', o.command.path(), '--help'].filter(Boolean).join(' ')}\n`,
      );
    return;
  }
  // A foreign error prints only its class and code: its message could quote a value.
  const e = err as { name?: string; code?: string };
  io.stderr(`callveil: unexpected ${e.name ?? 'error'}${e.code ? ` (${e.code})` : ''}\n`);
}
