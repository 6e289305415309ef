import { createHash } from 'node:crypto';

import { parse as parseCsv } from 'csv-parse/sync';

/** One catalog entry with the published field names' meaning, validated. */
export interface KevEntryInput {
  cveId: string;
  vendorProject: string;
  product: string;
  vulnerabilityName: string;
  /** YYYY-MM-DD */
  dateAdded: string;
  shortDescription: string;
  requiredAction: string;
  /** YYYY-MM-DD */
  dueDate: string;
  knownRansomwareUse: boolean;
  notes: string;
  cwes: string[];
}

export interface ParsedCatalog {
  format: 'json' | 'csv';
  catalogVersion: string | null;
  dateReleased: string | null;
  entries: KevEntryInput[];
  /** CSV columns that are not part of the KEV format and were ignored. */
  ignoredColumns: string[];
}

/** Location of a problem in a catalog: a line (CSV) or an entry index (JSON), and the field. */
export interface CatalogProblem {
  line?: number;
  entry?: number;
  field?: string;
  message: string;
}

/** Raised for a file that is malformed or not a KEV catalog; nothing is stored when it is thrown. */
export class CatalogFormatError extends Error {
  constructor(
    message: string,
    readonly problems: CatalogProblem[] = [],
    readonly notKev = false,
  ) {
    super(message);
    this.name = 'CatalogFormatError';
  }
}

export const CSV_COLUMNS = [
  'cveID',
  'vendorProject',
  'product',
  'vulnerabilityName',
  'dateAdded',
  'shortDescription',
  'requiredAction',
  'dueDate',
  'knownRansomwareCampaignUse',
  'notes',
  'cwes',
] as const;

/** Fields the KEV schema does not require: absent means "Unknown", empty notes, no CWE ids. */
const OPTIONAL_FIELDS: readonly string[] = ['knownRansomwareCampaignUse', 'notes', 'cwes'];
const REQUIRED_FIELDS = CSV_COLUMNS.filter((column) => !OPTIONAL_FIELDS.includes(column));

const CVE_ID = /^CVE-\d{4}-\d{4,19}$/;
const CWE_ID = /^CWE-\d+$/;
/** Problems listed per failed import; the rest are counted. */
const MAX_PROBLEMS = 20;

/** Parses a catalog in JSON or CSV form; the format is taken from the first non-blank character. */
export function parseCatalog(content: string): ParsedCatalog {
  const text = content.replace(/^\uFEFF/, '');
  const first = text.trimStart()[0];
  if (first === undefined) throw new CatalogFormatError('The file is empty', [], true);
  return first === '{' || first === '[' ? parseJsonCatalog(text) : parseCsvCatalog(text);
}

export function parseJsonCatalog(text: string): ParsedCatalog {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new CatalogFormatError(`The file is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new CatalogFormatError('Not a KEV catalog: the top level must be an object', [], true);
  }
  const catalog = document as Record<string, unknown>;
  if (!Array.isArray(catalog.vulnerabilities)) {
    throw new CatalogFormatError(
      'Not a KEV catalog: the field "vulnerabilities" (an array) is missing',
      [{ field: 'vulnerabilities', message: 'missing or not an array' }],
      true,
    );
  }

  const collector = new ProblemCollector();
  const entries: KevEntryInput[] = [];
  catalog.vulnerabilities.forEach((raw: unknown, index) => {
    const entry = validateEntry(raw, (field, message) =>
      collector.add({
        entry: index,
        field,
        message: `vulnerabilities[${index}].${field}: ${message}`,
      }),
    );
    if (entry) entries.push(entry);
  });

  if (typeof catalog.count === 'number' && catalog.count !== catalog.vulnerabilities.length) {
    collector.add({
      field: 'count',
      message: `count is ${catalog.count} but the file lists ${catalog.vulnerabilities.length} entries`,
    });
  }
  checkDuplicates(entries, (index) => ({ entry: index }), collector);
  collector.throwIfAny();

  return {
    format: 'json',
    catalogVersion: typeof catalog.catalogVersion === 'string' ? catalog.catalogVersion : null,
    dateReleased: typeof catalog.dateReleased === 'string' ? catalog.dateReleased : null,
    entries,
    ignoredColumns: [],
  };
}

export function parseCsvCatalog(text: string): ParsedCatalog {
  let header: string[] = [];
  type CsvRow = { record: Record<string, string>; info: { lines: number } };
  let rows: CsvRow[];
  try {
    rows = parseCsv<CsvRow>(text, {
      bom: true,
      info: true,
      skip_empty_lines: true,
      columns: (names: string[]) => {
        header = names.map((name) => name.trim());
        return header;
      },
    });
  } catch (error) {
    const { lines } = error as { lines?: number };
    throw new CatalogFormatError(
      `The file is not valid CSV${lines ? ` (line ${lines})` : ''}: ${(error as Error).message}`,
      lines ? [{ line: lines, message: (error as Error).message }] : [],
    );
  }

  const missing = CSV_COLUMNS.filter((column) => column !== 'cwes' && !header.includes(column));
  if (missing.length > 0) {
    throw new CatalogFormatError(
      `Not a KEV catalog: the CSV header lacks ${missing.join(', ')}`,
      [{ line: 1, message: `missing columns: ${missing.join(', ')}` }],
      true,
    );
  }

  const collector = new ProblemCollector();
  const entries: KevEntryInput[] = [];
  const lines: number[] = [];
  for (const { record, info } of rows) {
    const raw = {
      ...record,
      cwes: splitCwes(record.cwes),
    };
    const entry = validateEntry(raw, (field, message) =>
      collector.add({
        line: info.lines,
        field,
        message: `line ${info.lines}, ${field}: ${message}`,
      }),
    );
    if (entry) {
      entries.push(entry);
      lines.push(info.lines);
    }
  }
  checkDuplicates(entries, (index) => ({ line: lines[index] }), collector);
  collector.throwIfAny();

  return {
    format: 'csv',
    catalogVersion: null,
    dateReleased: null,
    entries,
    ignoredColumns: header.filter((name) => !(CSV_COLUMNS as readonly string[]).includes(name)),
  };
}

/** Splits the CSV cwes field, which lists ids comma-separated in one field: "CWE-59, CWE-436". */
function splitCwes(value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((cwe) => cwe.trim());
}

function validateEntry(
  raw: unknown,
  report: (field: string, message: string) => void,
): KevEntryInput | undefined {
  if (typeof raw !== 'object' || raw === null) {
    report('(entry)', 'must be an object');
    return undefined;
  }
  const record = raw as Record<string, unknown>;
  let valid = true;
  const fail = (field: string, message: string): void => {
    valid = false;
    report(field, message);
  };

  for (const field of REQUIRED_FIELDS) {
    const value = record[field];
    if (typeof value !== 'string' || value.trim() === '') fail(field, 'missing or empty');
  }
  if (typeof record.cveID === 'string' && !CVE_ID.test(record.cveID)) {
    fail('cveID', `must look like CVE-2024-1709 (got "${record.cveID.slice(0, 40)}")`);
  }
  for (const field of ['dateAdded', 'dueDate'] as const) {
    const value = record[field];
    if (typeof value === 'string' && value !== '' && !isCalendarDate(value)) {
      fail(field, `must be a date YYYY-MM-DD (got "${value.slice(0, 40)}")`);
    }
  }

  const ransomware = record.knownRansomwareCampaignUse ?? 'Unknown';
  if (ransomware !== 'Known' && ransomware !== 'Unknown') {
    fail(
      'knownRansomwareCampaignUse',
      `must be "Known" or "Unknown" (got ${JSON.stringify(ransomware).slice(0, 40)})`,
    );
  }
  const notes = record.notes ?? '';
  if (typeof notes !== 'string') fail('notes', 'must be a string');
  const cwes = record.cwes ?? [];
  if (!Array.isArray(cwes) || cwes.some((cwe) => typeof cwe !== 'string' || !CWE_ID.test(cwe))) {
    fail('cwes', 'must be a list of ids such as CWE-79');
  }
  if (!valid) return undefined;

  return {
    cveId: record.cveID as string,
    vendorProject: record.vendorProject as string,
    product: record.product as string,
    vulnerabilityName: record.vulnerabilityName as string,
    dateAdded: record.dateAdded as string,
    shortDescription: record.shortDescription as string,
    requiredAction: record.requiredAction as string,
    dueDate: record.dueDate as string,
    knownRansomwareUse: ransomware === 'Known',
    notes: notes as string,
    cwes: cwes as string[],
  };
}

function checkDuplicates(
  entries: KevEntryInput[],
  locate: (index: number) => Partial<CatalogProblem>,
  collector: ProblemCollector,
): void {
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    if (seen.has(entry.cveId)) {
      const location = locate(index);
      const where =
        location.line !== undefined
          ? `line ${location.line}`
          : `vulnerabilities[${location.entry}]`;
      collector.add({
        ...location,
        field: 'cveID',
        message: `${where}, cveID: ${entry.cveId} is listed twice`,
      });
    }
    seen.add(entry.cveId);
  });
}

function isCalendarDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(value);
}

/**
 * Fingerprint of an entry's published content, identical whether it came from JSON or CSV, so a
 * re-import in the other form changes nothing.
 */
export function entryContentHash(entry: KevEntryInput): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        entry.cveId,
        entry.vendorProject,
        entry.product,
        entry.vulnerabilityName,
        entry.dateAdded,
        entry.shortDescription,
        entry.requiredAction,
        entry.dueDate,
        entry.knownRansomwareUse,
        entry.notes,
        entry.cwes,
      ]),
    )
    .digest('hex');
}

class ProblemCollector {
  readonly problems: CatalogProblem[] = [];
  private total = 0;

  add(problem: CatalogProblem): void {
    this.total += 1;
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(problem);
  }

  throwIfAny(): void {
    if (this.total === 0) return;
    const more =
      this.total > this.problems.length
        ? ` (first ${this.problems.length} of ${this.total} listed)`
        : '';
    throw new CatalogFormatError(
      `The catalog has ${this.total} invalid value(s)${more}; first: ${this.problems[0].message}`,
      this.problems,
    );
  }
}

/** Writes entries in the published CSV form; used by tests and the benchmark to build CSV catalogs. */
export function toCsv(entries: KevEntryInput[]): string {
  const quote = (value: string): string => `"${value.replace(/"/g, '""')}"`;
  const lines = [CSV_COLUMNS.join(',')];
  for (const entry of entries) {
    lines.push(
      [
        entry.cveId,
        entry.vendorProject,
        entry.product,
        entry.vulnerabilityName,
        entry.dateAdded,
        entry.shortDescription,
        entry.requiredAction,
        entry.dueDate,
        entry.knownRansomwareUse ? 'Known' : 'Unknown',
        entry.notes,
        entry.cwes.join(', '),
      ]
        .map(quote)
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}
