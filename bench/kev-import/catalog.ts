import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

import { entryContentHash, KevEntryInput } from '../../src/vulnerabilities/kev-catalog';

/** Columns that the COPY baseline fills, the same ones that KevImportService inserts. */
export const KEV_COPY_COLUMNS = [
  'cve_id',
  'vendor_project',
  'product',
  'vulnerability_name',
  'date_added',
  'short_description',
  'required_action',
  'due_date',
  'known_ransomware_use',
  'notes',
  'cwes',
  'content_hash',
  'first_seen_at',
  'updated_at',
] as const;

/** Builds the psql meta-command that copies CSV rows of KEV_COPY_COLUMNS from `source` into kev_entries. */
export function kevCopyCommand(source: string): string {
  return `\\copy kev_entries (${KEV_COPY_COLUMNS.join(', ')}) FROM ${source} WITH (FORMAT csv)`;
}

const CVE_ID = /^CVE-(\d{4})-(\d{4,19})$/;
/** Rows per write when streaming CSV, so each write is about 100 KB. */
const ROWS_PER_WRITE = 128;

/**
 * Builds a catalog of `copies` times the entries of a real CISA KEV catalog (JSON form) and returns
 * its JSON text. Copy k (0-based) rewrites CVE-YYYY-NNNN to CVE-YYYY-<k><NNNN zero-padded to the
 * longest number in the source>, so every id is unique and still matches ^CVE-[0-9]{4}-[0-9]{4,19}$.
 * Every other field keeps its value, `count` is the new length, and characters outside ASCII are
 * written as \uXXXX escapes like the published file.
 */
export function buildScaledCatalog(realCatalogText: string, copies: number): string {
  const catalog = JSON.parse(realCatalogText) as {
    count?: number;
    vulnerabilities: Record<string, unknown>[];
  };
  const ids = catalog.vulnerabilities.map((entry) => {
    const cveId = String(entry.cveID);
    const match = CVE_ID.exec(cveId);
    if (match === null) throw new Error(`The source catalog has an invalid cveID: ${cveId}`);
    return { year: match[1], number: match[2] };
  });
  const width = Math.max(...ids.map((id) => id.number.length));

  const vulnerabilities: Record<string, unknown>[] = [];
  for (let copy = 0; copy < copies; copy++) {
    catalog.vulnerabilities.forEach((entry, index) => {
      const { year, number } = ids[index];
      const cveID = `CVE-${year}-${copy}${number.padStart(width, '0')}`;
      if (!CVE_ID.test(cveID)) throw new Error(`The rewritten cveID ${cveID} is not a valid id`);
      vulnerabilities.push({ ...entry, cveID });
    });
  }
  const text = JSON.stringify(
    { ...catalog, count: vulnerabilities.length, vulnerabilities },
    null,
    2,
  );
  return text.replace(
    /[\u007f-\uffff]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Formats entries as CSV rows of KEV_COPY_COLUMNS, with the values that KevImportService writes:
 * cwes as a text[] literal, the content hash from entryContentHash(), and `timestamp` as
 * first_seen_at and updated_at. Every text field is quoted, so an empty string stays non-null.
 */
export function kevCopyRows(entries: KevEntryInput[], timestamp: string): string {
  const quote = (value: string): string => `"${value.replace(/"/g, '""')}"`;
  let rows = '';
  for (const entry of entries) {
    const fields = [
      quote(entry.cveId),
      quote(entry.vendorProject),
      quote(entry.product),
      quote(entry.vulnerabilityName),
      entry.dateAdded,
      quote(entry.shortDescription),
      quote(entry.requiredAction),
      entry.dueDate,
      entry.knownRansomwareUse ? 't' : 'f',
      quote(entry.notes),
      // CWE ids match ^CWE-\d+$ (checked by parseCatalog), so the array literal needs no quoting.
      quote(`{${entry.cwes.join(',')}}`),
      entryContentHash(entry),
      timestamp,
      timestamp,
    ];
    rows += `${fields.join(',')}\n`;
  }
  return rows;
}

/** Writes kevCopyRows() of all entries to `output` in slices, waiting for 'drain' when it is full. */
export async function writeKevCopyRows(
  output: Writable,
  entries: KevEntryInput[],
  timestamp: string,
): Promise<void> {
  for (let start = 0; start < entries.length; start += ROWS_PER_WRITE) {
    const chunk = kevCopyRows(entries.slice(start, start + ROWS_PER_WRITE), timestamp);
    if (!output.write(chunk)) await once(output, 'drain');
  }
}

/** Writes kevCopyRows() of all entries to a new file at `path`. */
export async function writeKevCopyFile(
  path: string,
  entries: KevEntryInput[],
  timestamp: string,
): Promise<void> {
  const file = createWriteStream(path);
  await writeKevCopyRows(file, entries, timestamp);
  file.end();
  await once(file, 'finish');
}
