// sources.cdrStore as the reader takes it.
import type { Config } from '../config/schema.js';
import type { CsvLayout } from './master-csv.js';

/** The configured layout; undefined for auto (detected per row). */
export function csvLayoutOf(layout: Config['sources']['cdrStore']['layout']): CsvLayout | undefined {
  return layout === 'auto' ? undefined : layout;
}
