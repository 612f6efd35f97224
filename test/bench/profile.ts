// Reads a V8 .cpuprofile (node --cpu-prof) and names the hot spots: self time
// per function (file:function) and per file, as shares of the busy
// (non-idle) samples. run.ts --profile prints this for every benchmark.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
}

export interface HotSpot {
  readonly where: string;
  readonly share: number;
}

export interface ProfileSummary {
  readonly busySamples: number;
  readonly idleShare: number;
  readonly functions: HotSpot[];
  readonly files: HotSpot[];
}

export function summariseProfile(path: string, root: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const hits = new Map<number, number>();
  if (profile.samples !== undefined) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  else for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0);
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const node of profile.nodes) {
    const n = hits.get(node.id) ?? 0;
    if (n === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += n;
      continue;
    }
    busy += n;
    const file = fileOf(url, root);
    // Compiled line numbers do not match the .ts source: only anonymous functions get one, to tell them apart.
    const fn = `${file}:${functionName || `(anonymous, js line ${lineNumber + 1})`}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + n);
    byFile.set(file, (byFile.get(file) ?? 0) + n);
  }
  const rank = (m: Map<string, number>): HotSpot[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([where, n]) => ({ where, share: busy > 0 ? n / busy : 0 }));
  return {
    busySamples: busy,
    idleShare: busy + idle > 0 ? idle / (busy + idle) : 0,
    functions: rank(byFunction),
    files: rank(byFile),
  };
}

/** src/... for our code (compiled to .build/src), node_modules/<package>/... for libraries, node: for Node's own. */
function fileOf(url: string, root: string): string {
  if (url === '') return '(native/vm)';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = relative(root, path).replace(/\\/g, '/');
  const built = rel.indexOf('.build/');
  const inRepo = built !== -1 ? rel.slice(built + '.build/'.length) : rel;
  if (inRepo.includes('node_modules/')) return inRepo.replace(/^.*node_modules\//, 'node_modules/');
  return inRepo.replace(/\.js$/, '.ts');
}
