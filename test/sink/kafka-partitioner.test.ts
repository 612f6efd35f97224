// The sink's partitioner must place every key exactly where kafkajs's
// DefaultPartitioner (and Java's client) would: same key, same partition,
// whichever producer wrote it, across versions of the gateway.
import t from 'tap';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { keyPartitioner, murmur2, partitionOfKey } from '../../src/sink/kafka-partitioner.js';

const require = createRequire(import.meta.url);
// kafkajs's own murmur2 (Long arithmetic), the reference.
const reference = require('kafkajs/src/producer/partitioners/default/murmur2') as (key: string | Buffer) => number;

function keys(): string[] {
  const out = ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'pbx-1.1700000000.17', 'Δ-unicode-€', 'x'.repeat(300)];
  for (let i = 0; i < 3000; i++) out.push(randomBytes(1 + (i % 40)).toString(i % 3 === 0 ? 'hex' : 'base64url'));
  for (let i = 0; i < 300; i++) out.push(randomBytes(1 + (i % 25)).toString('latin1'));
  return out;
}

t.test('murmur2 equals kafkajs\u2019s, bit for bit, on ASCII, UTF-8 and long keys', async (t) => {
  let mismatches = 0;
  for (const k of keys()) if (murmur2(Buffer.from(k, 'utf8')) !== reference(k)) mismatches++;
  t.equal(mismatches, 0);
  t.equal(murmur2(Buffer.from('21')), reference('21'));
  // Java's documented value for the empty array with this seed (Utils.murmur2(new byte[0])).
  t.equal(murmur2(new Uint8Array(0)), reference(Buffer.alloc(0)));
});

t.test('partitions equal the DefaultPartitioner\u2019s for every key and partition count', async (t) => {
  const def = kafkajs.Partitioners.DefaultPartitioner();
  const ours = keyPartitioner();
  let mismatches = 0;
  for (const partitions of [1, 2, 3, 6, 12, 50]) {
    const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({
      partitionId: i,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    for (const key of keys()) {
      const args = { topic: 't', partitionMetadata, message: { key, value: 'v' } };
      if (ours(args) !== def(args) || partitionOfKey(key, partitions) !== def(args)) mismatches++;
    }
    const explicit = { topic: 't', partitionMetadata, message: { key: 'k', value: 'v', partition: 0 } };
    t.equal(ours(explicit), 0, 'an explicit partition is kept');
    const unkeyed = ours({ topic: 't', partitionMetadata, message: { value: 'v' } });
    t.ok(unkeyed >= 0 && unkeyed < partitions, 'an unkeyed record still gets a partition');
  }
  t.equal(mismatches, 0);
});
