// A YAML (or JSON) file parsed with its positions kept, so a problem can name
// the line of the setting itself: the key's line for a bad or unknown key,
// the parent's for a missing one.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';

type Path = readonly (string | number)[];

export interface YamlFile {
  readonly data: unknown;
  /** The line of the deepest part of `path` the file has (1-based); undefined for the top level. */
  lineOf(path: Path): number | undefined;
}

export type YamlResult =
  | { readonly ok: true; readonly file: YamlFile }
  | { readonly ok: false; readonly line: number | undefined; readonly code: string };

export function parseYaml(text: string): YamlResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    return { ok: false, line: lineCounter.linePos(e.pos[0]).line, code: e.code };
  }
  const line = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
  return {
    ok: true,
    file: {
      data: doc.toJS(),
      lineOf(path) {
        for (let n = path.length; n > 0; n--) {
          const at = positionOf(doc, path.slice(0, n - 1), path[n - 1]!);
          if (at !== undefined) return line(at);
        }
        return undefined;
      },
    },
  };
}

/** Offset of `key` (a mapping key, or a sequence item) under `parent`; undefined if the file lacks it. */
function positionOf(doc: Document, parent: Path, key: string | number): number | undefined {
  const node = parent.length === 0 ? doc.contents : doc.getIn(parent, true);
  if (isMap(node)) {
    for (const pair of node.items) {
      const k = pair.key;
      const name = isScalar(k) ? k.value : k;
      if (String(name) === String(key)) return isScalar(k) ? k.range?.[0] : undefined;
    }
    return undefined;
  }
  if (isSeq(node) && typeof key === 'number') {
    const item = node.items[key] as { range?: [number, number, number] } | undefined;
    return item?.range?.[0];
  }
  return undefined;
}
