// Runs the derivation on a bundled capture's ground truth files; shared by the
// generator (test/fixtures/derive-expected.ts) and the drift test.

import { SYSTEM_NAMES, readCapture, readCelCsv, readMasterCsv, readPlan, type CaptureName } from './ground-truth.js';
import { LABS, deriveExpected, holdTimesFromCapture } from './expected-derive.js';
import type { ExpectedTable } from './expected-tables.js';

/** The load table is large (1603 legs, 1200 calls): stored gzipped like load's other files. */
export const expectedFileName = (name: string): string =>
  name === 'load' ? `${name}.expected.json.gz` : `${name}.expected.json`;

export function deriveCapture(name: CaptureName): ExpectedTable {
  const systemName = SYSTEM_NAMES[name];
  const lab = LABS[systemName];
  if (lab === undefined) throw new Error(`no lab configuration for ${name}`);
  return deriveExpected({
    capture: name,
    systemName,
    master: readMasterCsv(name),
    cel: readCelCsv(name),
    plan: readPlan(name),
    lab,
    amiHoldTimes: holdTimesFromCapture(readCapture(name)),
  });
}
