// `callveil check`'s Kafka part: every topic the gateway writes exists or
// can be created (CreateTopics validate-only: the broker checks ACLs, sizes,
// config and policy, and creates nothing), its config can be read, and the
// ACLs each command needs are listed. Failures name the broker's error code.
import { creationFix, type TopicAdmin } from './kafka-admin.js';
import { aclSummary, kafkaAcls } from './kafka-acls.js';
import { isRefusal, kafkaCodeOf } from './kafka-errors.js';
import type { TopicSpec } from './topics.js';

export type CheckReport = (ok: boolean, what: string, detail: string) => void;

export type TopicVerdict =
  | { readonly topic: string; readonly state: 'exists' }
  | { readonly topic: string; readonly state: 'creatable' }
  | { readonly topic: string; readonly state: 'refused'; readonly kafkaCode: string; readonly fix: string };

/** Each topic: there, or creatable (validated, not created), or refused with the broker's code. */
export async function judgeTopics(admin: TopicAdmin, specs: readonly TopicSpec[]): Promise<TopicVerdict[]> {
  const existing = await admin.list();
  const out: TopicVerdict[] = [];
  for (const s of specs) {
    if (existing.has(s.name)) {
      out.push({ topic: s.name, state: 'exists' });
      continue;
    }
    try {
      await admin.create(s, { validateOnly: true });
      out.push({ topic: s.name, state: 'creatable' });
    } catch (err) {
      const kafkaCode = kafkaCodeOf(err);
      // Created by someone else since the listing, or hidden from it: it is there.
      if (kafkaCode === 'TOPIC_ALREADY_EXISTS') out.push({ topic: s.name, state: 'exists' });
      else if (isRefusal(err)) out.push({ topic: s.name, state: 'refused', kafkaCode, fix: creationFix(kafkaCode, s) });
      else throw err;
    }
  }
  return out;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Reports the topics, their configs and the ACL list; `connect` is only called once Kafka answered metadata. */
export async function checkKafkaTopics(
  connect: () => Promise<TopicAdmin>,
  specs: readonly TopicSpec[],
  acls: { readonly prefix: string; readonly clientId: string },
  report: CheckReport,
): Promise<void> {
  let admin: TopicAdmin | undefined;
  try {
    admin = await connect();
    const verdicts = await judgeTopics(admin, specs);
    const refused = verdicts.filter((v) => v.state === 'refused');
    const creatable = verdicts.filter((v) => v.state === 'creatable').map((v) => v.topic);
    const exist = verdicts.filter((v) => v.state === 'exists').map((v) => v.topic);
    for (const v of refused)
      report(
        false,
        `kafka topic ${v.topic}`,
        `missing, and the broker refuses to create it (${v.kafkaCode}) — fix: ${v.fix}`,
      );
    if (refused.length === 0)
      report(
        true,
        'kafka topics',
        `${plural(specs.length, 'topic')} the gateway writes: ${exist.length} exist${creatable.length === 0 ? '' : `, ${creatable.length} missing and can be created (checked with validate-only, nothing created; the gateway creates them before first use): ${creatable.join(', ')}`}`,
      );
    if (exist.length > 0) {
      try {
        await admin.describe(exist);
        report(
          true,
          'kafka topic configs',
          `readable for the ${plural(exist.length, 'existing topic')} (retention is checked with them)`,
        );
      } catch (err) {
        report(
          false,
          'kafka topic configs',
          `cannot be read (${kafkaCodeOf(err)}) — fix: grant DescribeConfigs on topics prefixed "${acls.prefix}." (the gateway checks topic retention with it)`,
        );
      }
    }
  } catch (err) {
    report(
      false,
      'kafka topics',
      `cannot be listed or checked (${kafkaCodeOf(err)}) — fix: grant Describe (and Create) on topics prefixed "${acls.prefix}."`,
    );
  } finally {
    await admin?.close();
  }
  report(
    true,
    'kafka acls',
    ['what each command needs:', ...aclSummary(kafkaAcls(acls.prefix, acls.clientId))].join('\n    '),
  );
}
