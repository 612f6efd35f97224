// The tenant console's static files (plain HTML/CSS/JS in src/api/console/),
// plus the charting library (uPlot, a dependency) served from its package, so
// the strict CSP (scripts from this origin only) holds: no CDN, no inline
// script. Resolved from the package root, so the same paths work from src/
// (tests) and from dist/ (the built package); read once and kept in memory.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

export const CONSOLE_DIR = fileURLToPath(new URL('../../src/api/console/', import.meta.url));

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const FILES: Readonly<Record<string, readonly [file: string, type: string]>> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/console.css': ['console.css', CSS],
  '/console.js': ['console.js', JS],
};
/** From the uplot package's dist/ (MIT). */
const VENDOR: Readonly<Record<string, readonly [file: string, type: string]>> = {
  '/vendor/uplot.js': ['uPlot.iife.min.js', JS],
  '/vendor/uplot.css': ['uPlot.min.css', CSS],
};

function uplotDist(): string {
  // uplot has no "exports" map: its package.json resolves like any file.
  return join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
}

export function loadConsoleAssets(dir: string = CONSOLE_DIR): ReadonlyMap<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [path, [file, type]] of Object.entries(FILES)) out.set(path, { type, body: readFileSync(dir + file) });
  const vendor = uplotDist();
  for (const [path, [file, type]] of Object.entries(VENDOR))
    out.set(path, { type, body: readFileSync(join(vendor, file)) });
  return out;
}
