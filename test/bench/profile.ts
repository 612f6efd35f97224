// Reads a V8 .cpuprofile (node --cpu-prof) and names the hot spots: self time
// per function (file:function), per file and per pipeline stage, as shares of
// the busy (non-idle) samples. run.ts --profile prints this for every benchmark.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
  readonly children?: readonly number[];
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
  /** Every busy sample by pipeline stage (stageOf; Node's and V8's own code counts for its caller), largest first. */
  readonly components: HotSpot[];
}

/**
 * The pipeline stage of a file of ours or of a library; undefined for Node's
 * own code and V8 (native code, builtins, code made by new Function), whose
 * time goes to the stage that called it.
 */
export function stageOf(file: string): string | undefined {
  if (file === 'src/source/frame-parser.ts') return 'parser';
  if (file === 'src/source/ami-message.ts') return 'field() reads';
  if (file.startsWith('src/assemble/')) return 'assembler';
  if (file.startsWith('node_modules/lru-cache/')) return 'lru-cache';
  if (file.startsWith('src/privacy/') || file.startsWith('node_modules/libphonenumber-js/')) return 'privacy';
  if (file.startsWith('node_modules/zod/')) return 'record schema (zod)';
  if (file === 'src/pipeline.ts' || file.startsWith('src/observability/')) return 'pipeline and metrics';
  if (file.startsWith('src/source/')) return 'AMI client and server';
  if (file.startsWith('test/bench/')) return 'bench harness';
  if (file.startsWith('src/')) return 'other gateway code';
  if (file.startsWith('node_modules/')) return 'other libraries';
  return undefined;
}

export function summariseProfile(path: string, root: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const hits = new Map<number, number>();
  if (profile.samples !== undefined) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  else for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0);
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  const byComponent = new Map<string, number>();
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const c of node.children ?? []) parentOf.set(c, node);
  const stageOfNode = (node: ProfileNode): string => {
    const name = node.callFrame.functionName;
    if (name === '(garbage collector)') return 'garbage collector';
    if (name === '(program)') return 'V8 (program)';
    for (let n: ProfileNode | undefined = node; n !== undefined; n = parentOf.get(n.id)) {
      const stage = stageOf(fileOf(n.callFrame.url, root));
      if (stage !== undefined) return stage;
    }
    return 'Node (event loop, timers)';
  };
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
    const stage = stageOfNode(node);
    byComponent.set(stage, (byComponent.get(stage) ?? 0) + n);
  }
  const rank = (m: Map<string, number>, n = top): HotSpot[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([where, n]) => ({ where, share: busy > 0 ? n / busy : 0 }));
  return {
    busySamples: busy,
    idleShare: busy + idle > 0 ? idle / (busy + idle) : 0,
    functions: rank(byFunction),
    files: rank(byFile),
    components: rank(byComponent, byComponent.size),
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
