// The README's documented lists, read the way a person reads them: a
// section's tables, the backticked names in a column.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const README = readFileSync(resolve(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

/** The text of `## title` up to the next heading of the same level. */
export function section(title: string, text: string = README): string {
  const start = text.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README has no section "## ${title}"`);
  const rest = text.slice(start + title.length + 5);
  const end = rest.search(/\n## /);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The tables of a section, each as rows of cells (header and separator rows left out). */
export function tables(sectionText: string): string[][][] {
  const out: string[][][] = [];
  let current: string[][] | undefined;
  for (const line of sectionText.split('\n')) {
    if (!line.startsWith('|')) {
      current = undefined;
      continue;
    }
    const cells = line
      .slice(1, line.endsWith('|') ? -1 : undefined)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    if (current === undefined) {
      current = [];
      out.push(current); // this row is the header
      continue;
    }
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    current.push(cells);
  }
  return out;
}

/** The `backticked` names in a cell. */
export function names(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
}
