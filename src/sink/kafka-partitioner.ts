// Key -> partition exactly as kafkajs's DefaultPartitioner (and Java's
// client) places keyed records: murmur2 of the key's UTF-8 bytes, made
// positive, modulo the topic's partition count. kafkajs computes murmur2
// with a 64-bit Long emulation and a Buffer per record, which measured as
// the largest single cost in its producer after record encoding; Java's
// algorithm is 32-bit int arithmetic, which Math.imul does natively. Same
// key, same partition, whichever of the two computes it (tested bit for bit).
import { Partitioners, type ICustomPartitioner } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Java's Utils.murmur2 over bytes (as a signed 32-bit int). */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) h = Math.imul(h ^ data[tail]!, M);
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

// An ASCII key (record keys are keyed ids: base64url and separators) is hashed from its char codes,
// without the Buffer a conversion would allocate; anything else goes through UTF-8.
const scratch = new Uint8Array(256);

function murmur2Key(key: string | Buffer): number {
  if (typeof key !== 'string') return murmur2(key);
  const n = key.length;
  if (n <= scratch.length) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = key.charCodeAt(i);
      if (c > 0x7f) {
        ascii = false;
        break;
      }
      scratch[i] = c;
    }
    if (ascii) return murmur2(scratch.subarray(0, n));
  }
  return murmur2(Buffer.from(key, 'utf8'));
}

/** Where kafkajs's DefaultPartitioner would put a record with this key, among `partitions`. */
export function partitionOfKey(key: string | Buffer, partitions: number): number {
  return (murmur2Key(key) & 0x7fffffff) % partitions;
}

/** kafkajs's DefaultPartitioner with a native murmur2: the same partitions, without the Long arithmetic. */
export const keyPartitioner: ICustomPartitioner = () => {
  // Unkeyed records (none from the sink) and explicit partitions: exactly the default's behaviour.
  const fallback = Partitioners.DefaultPartitioner();
  return (args) => {
    const { message, partitionMetadata } = args;
    if (message.partition !== undefined && message.partition !== null) return message.partition;
    const key = message.key;
    if (key === null || key === undefined) return fallback(args);
    return partitionOfKey(key, partitionMetadata.length);
  };
};
