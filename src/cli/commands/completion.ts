// `callveil completion bash|zsh`: a completion script made from the command
// tree, so a command added to the tree completes without editing this file.
import { Argument } from 'commander';
import type { CliCommand, Registrar } from '../cli-command.js';

export const SHELLS = ['bash', 'zsh'] as const;

export const registerCompletion: Registrar = (root, { io }) => {
  root
    .command('completion')
    .summary('prints a shell completion script (bash, zsh)')
    .description(
      'Prints a completion script for commands, subcommands and options. Load it from your shell start-up ' +
        'file; after a command is typed, file names complete as usual.',
    )
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .examples(
      'source <(callveil completion bash)   # in ~/.bashrc',
      'source <(callveil completion zsh)    # in ~/.zshrc',
    )
    .run((_o, [shell]) => {
      io.stdout(completionScript(root, shell as (typeof SHELLS)[number]));
      return 0;
    });
};

/** The script: bash's `complete -F`; zsh runs the same function through bashcompinit. */
export function completionScript(root: CliCommand, shell: (typeof SHELLS)[number]): string {
  const nodes = [root, ...root.descendants()];
  // What may follow a command: its subcommands, or the choices of its first operand (`schema record|erasure`).
  const children = (c: CliCommand) =>
    c.commands.length > 0
      ? c.commands.map((s) => s.name()).concat(c === root ? ['help'] : [])
      : [...(c.registeredArguments[0]?.argChoices ?? [])];
  const cases = (pick: (c: CliCommand) => string[]) =>
    nodes.map((c) => `    '${c.path()}') REPLY='${pick(c).join(' ')}' ;;`).join('\n');
  const bash = `# callveil completion for ${shell}, made from its command tree (callveil completion ${shell})
_callveil_commands() {
  case "$1" in
${cases(children)}
    *) REPLY='' ;;
  esac
}
_callveil_options() {
  case "$1" in
${cases((c) => c.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)).concat('--help'))}
    *) REPLY='' ;;
  esac
}
_callveil() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    _callveil_commands "$path"
    if [[ " $REPLY " == *" \${COMP_WORDS[i]} "* ]]; then path="\${path:+$path }\${COMP_WORDS[i]}"; fi
  done
  if [[ "$cur" == -* ]]; then _callveil_options "$path"; else _callveil_commands "$path"; fi
  COMPREPLY=($(compgen -W "$REPLY" -- "$cur"))
}
complete -o default -F _callveil callveil
`;
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${bash}` : bash;
}
