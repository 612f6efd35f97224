// The one way a test makes a temp dir: named callveil-<prefix>-XXXXXX in the
// OS temp dir and removed when the test that asked for it ends (teardowns run
// last-in first-out, so a dir made before the servers and logs that write into
// it outlives them). test/helpers/temp-dir.test.ts fails on any other mkdtemp.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export function tempDir(t: Teardown, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `callveil-${prefix}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true, maxRetries: 3 }));
  return dir;
}
