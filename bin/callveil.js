#!/usr/bin/env node
// Runs the compiled CLI (dist/ is built by `npm ci` through the prepare script).
// A crash prints only the error's class and code: a stack or message from a
// foreign library could quote a value that holds a phone number.
import { main } from '../dist/cli/main.js';

function crash(err) {
  const name = err && typeof err === 'object' && 'name' in err ? String(err.name) : 'error';
  const code = err && typeof err === 'object' && 'code' in err ? ` (${String(err.code)})` : '';
  process.stderr.write(`callveil: unexpected ${name}${code}\n`);
  process.exit(70);
}
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

// Exit as soon as the command is done: every record is acknowledged or
// fsync'd in the spool by then, and a stalled Kafka socket must not keep a
// stopped gateway alive.
main(process.argv.slice(2)).then((code) => process.exit(code), crash);
