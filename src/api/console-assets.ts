// The tenant console's static files (plain HTML/CSS/JS in src/api/console/).
// Resolved from the package root, so the same path works from src/ (tests)
// and from dist/ (the built package); read once and kept in memory.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

export const CONSOLE_DIR = fileURLToPath(new URL('../../src/api/console/', import.meta.url));

const FILES: Readonly<Record<string, readonly [file: string, type: string]>> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/console.css': ['console.css', 'text/css; charset=utf-8'],
  '/console.js': ['console.js', 'text/javascript; charset=utf-8'],
};

export function loadConsoleAssets(dir: string = CONSOLE_DIR): ReadonlyMap<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [path, [file, type]] of Object.entries(FILES)) out.set(path, { type, body: readFileSync(dir + file) });
  return out;
}
