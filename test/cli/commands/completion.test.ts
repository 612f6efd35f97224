// `callveil completion bash|zsh`: the printed script, loaded into a real bash,
// completes commands, subcommands and options from the command tree.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const BIN = resolve(import.meta.dirname, '..', '..', '..', 'bin', 'callveil.js');

function script(shell: string): string {
  const r = spawnSync(process.execPath, [BIN, 'completion', shell], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`completion ${shell} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const bashScript = script('bash');

/** What bash offers for the command line `words`, the last word being the one under the cursor. */
function complete(words: string[]): string[] {
  const line = ['callveil', ...words];
  const r = spawnSync(
    'bash',
    [
      '--norc',
      '-c',
      `eval "$SCRIPT"; COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${line.length - 1}; _callveil; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', SCRIPT: bashScript }, timeout: 30_000 },
  );
  t.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((w) => w !== '');
}

t.test('bash: commands, subcommands and options of the tree', async (t) => {
  t.same(complete(['su']), ['subject']);
  t.same(complete(['re']), ['replay', 'reconcile', 'reveal']);
  t.same(complete(['subject', '']), ['export', 'suppress', 'unsuppress', 'suppressions', 'erase']);
  t.same(complete(['subject', 'sup']), ['suppress', 'suppressions']);
  t.same(complete(['subject', 'export', '--']), ['--config', '--tenant', '--since', '--out', '--help']);
  t.same(complete(['run', '--config', 'x.yaml', '--c']), ['--config'], 'an option value is not taken for a command');
  t.same(complete(['rules', 'check', '']), [], 'after a command: nothing of ours, so bash completes file names');
  t.same(complete(['--']), ['--version', '--help']);
  t.same(complete(['schema', '']), ['record', 'call', 'erasure'], "an operand's choices");
  t.same(complete(['completion', 'z']), ['zsh']);
});

t.test('zsh: the same function through bashcompinit', async (t) => {
  t.equal(
    script('zsh'),
    `autoload -U +X bashcompinit && bashcompinit\n${bashScript.replace('for bash', 'for zsh').replace('completion bash', 'completion zsh')}`,
  );
});
