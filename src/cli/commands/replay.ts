// `callveil replay` and `callveil demo`: a recorded capture through the whole pipeline.
// Definitions only: the implementation is imported when the command runs, so
// help and usage errors answer without loading the gateway.
import { optionalOption, type Registrar } from '../cli-command.js';
import type { ReplayOptions } from '../replay.js';
import { optionalConfigOption } from '../shared-options.js';

export const registerReplay: Registrar = (root, { env, io }) => {
  root
    .command('replay')
    .summary('replays a capture through the whole pipeline')
    .description(
      'Replays a recorded AMI capture through a built-in AMI server on 127.0.0.1 and the real AMI client, as ' +
        'fast as it can, through the whole pipeline. stdout gets exactly one JSON line, ' +
        '{"events":N,"cdrs":N,"calls":N,"withheld":N,"ms":N} (cdrs = leg records written, calls = call records ' +
        'written), after the records when they go to stdout. With --out, leg records go to that file, call ' +
        'records to --calls-out, and never to the configured Kafka. Progress is drawn on a terminal. ' +
        'Recording consent is evaluated as the live gateway does it: each recording is judged against --consent ' +
        '(a consent store file, the format of consent.json) or, without it, an embedded registry where nothing ' +
        'consents; the built-in server answers the stops, and records say recording "kept" or "blocked". ' +
        'Exit 1 if a record could not be written.',
    )
    .argument('<capture>', 'the capture file (.ami, or .ami.gz)')
    .addOption(optionalConfigOption())
    .addOption(
      optionalOption('--out <file>', 'write the leg records to FILE (JSONL)', 'stdout, before the summary line'),
    )
    .addOption(
      optionalOption(
        '--calls-out <file>',
        'write the call records to FILE (JSONL); needs --out',
        'next to --out, as <name>.calls.jsonl',
      ),
    )
    .addOption(
      optionalOption(
        '--consent <file>',
        'judge recordings against the consent store FILE (consent.json format)',
        'an embedded registry where nothing consents: every recording is blocked',
      ),
    )
    .examples(
      'callveil replay test/fixtures/ami/inbound-pstn.ami.gz --out /tmp/cdrs.jsonl --calls-out /tmp/calls.jsonl',
      'callveil replay capture.ami.gz --config /etc/callveil/config.yaml --consent /var/lib/callveil/consent.json --out /tmp/cdrs.jsonl',
    )
    .run<ReplayOptions>(async (o, [capture]) => (await import('../replay.js')).replay(o, capture!, env, io));

  root
    .command('demo')
    .summary('replays a bundled real capture (npm start)')
    .description(
      'Replays a bundled real Asterisk 20 session (40 inbound PSTN calls) through a built-in AMI server on ' +
        '127.0.0.1 and the real AMI client; the sanitized leg records land in ./callveil-out/cdrs.jsonl, the call ' +
        'records in ./callveil-out/calls.jsonl, and a short ' +
        'report is printed. No Asterisk, no Kafka, no config: one tenant with a key random for this run. ' +
        'The demo does not evaluate recording consent: every record says recording "none" (callveil replay ' +
        '--consent does).',
    )
    .examples('npm start', 'callveil demo && head -n 1 callveil-out/cdrs.jsonl')
    .run(async () => (await import('../replay.js')).demo(env, io));
};
