import { Readable } from 'node:stream';

import { CsvError, parse } from 'csv-parse';

import { InvalidInputError } from '../common/errors';
import type { ImportPreset } from './access.dto';
import type { AccountStatus, MfaState, Privilege } from './access.types';

/** One valid account row of an import file. */
export interface ImportedAccount {
  line: number;
  externalId: string;
  name: string;
  privilege: Privilege;
  mfaState: MfaState;
  status: Exclude<AccountStatus, 'removed'>;
  lastUsedAt: Date | null;
  attributes: Record<string, string>;
}

/** A row that cannot be imported; `externalId` is set when the row named one. */
export interface RejectedRow {
  line: number;
  externalId: string | null;
  reason: string;
}

/** A problem with the whole file (header, quoting): nothing of it can be imported. */
export class ImportFileError extends Error {
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(reason);
  }
}

type RowResult = ImportedAccount | RejectedRow;
type RowMapper = (fields: string[], line: number) => RowResult;

/**
 * Columns of the AWS IAM credential report, as documented in the IAM User Guide ("Getting
 * credential reports for your AWS account"). Those the import reads must be present.
 */
const AWS_REQUIRED = [
  'user',
  'arn',
  'password_enabled',
  'password_last_used',
  'mfa_active',
  'access_key_1_active',
  'access_key_1_last_used_date',
  'access_key_2_active',
  'access_key_2_last_used_date',
];
const AWS_ROOT = '<root_account>';
/** Report values meaning "no date": never used, not recorded, or not applicable to the root. */
const AWS_NO_DATE = ['n/a', 'no_information', 'not_supported'];

export const GENERIC_FIELDS = ['externalId', 'name', 'privilege', 'mfa', 'lastUsed', 'enabled'];

const TRUE_WORDS = ['true', 'yes', '1', 'enabled', 'on', 'y'];
const FALSE_WORDS = ['false', 'no', '0', 'disabled', 'off', 'n'];
const PRIVILEGE_WORDS: Record<string, Privilege> = {
  admin: 'admin',
  administrator: 'admin',
  root: 'admin',
  owner: 'admin',
  privileged: 'privileged',
  'power-user': 'privileged',
  poweruser: 'privileged',
  standard: 'standard',
  user: 'standard',
  member: 'standard',
  'read-only': 'read-only',
  readonly: 'read-only',
  viewer: 'read-only',
  read: 'read-only',
};

/** Parses a generic preset mapping such as `externalId:login,mfa:mfa_on`; 400 names `mapping`. */
export function parseMapping(mapping: string | undefined): Record<string, string> {
  const problem = (text: string): InvalidInputError =>
    new InvalidInputError('Invalid request: check mapping', [
      { field: 'mapping', problems: [text] },
    ]);
  if (mapping === undefined) throw problem('the generic preset needs a mapping');
  const result: Record<string, string> = {};
  for (const pair of mapping.split(',')) {
    const separator = pair.indexOf(':');
    const field = pair.slice(0, separator).trim();
    const column = pair.slice(separator + 1).trim();
    if (separator < 1 || column === '') throw problem(`"${pair}" is not field:column`);
    if (!GENERIC_FIELDS.includes(field)) {
      throw problem(`unknown field "${field}"; use ${GENERIC_FIELDS.join(', ')}`);
    }
    result[field] = column;
  }
  if (!result.externalId) throw problem('mapping must name the externalId column');
  return result;
}

/**
 * Streams account rows out of a CSV source, one result per data row (valid or rejected), with
 * 1-based line numbers. Bad quoting and header problems throw ImportFileError. Text that was not
 * valid UTF-8 reaches here as U+FFFD, so a row containing U+FFFD is rejected as invalid UTF-8.
 */
export async function* readAccountRows(
  source: Readable | string,
  preset: ImportPreset,
  mapping: Record<string, string> | undefined,
): AsyncGenerator<RowResult> {
  const input = typeof source === 'string' ? Readable.from([source]) : source;
  const parser = input.pipe(
    parse({
      bom: true,
      relax_column_count: true,
      skip_empty_lines: true,
      info: true,
      max_record_size: 1_000_000,
    }),
  );
  let mapper: RowMapper | undefined;
  let width = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{
      record: string[];
      info: { lines: number };
    }>) {
      const line = info.lines;
      if (mapper === undefined) {
        const header = record.map((name) => name.trim());
        width = header.length;
        assertValidText(header, line, 'header');
        mapper = preset === 'generic' ? genericMapper(header, mapping ?? {}) : awsMapper(header);
        continue;
      }
      if (record.length !== width) {
        yield {
          line,
          externalId: null,
          reason: `row has ${record.length} fields, the header has ${width}`,
        };
        continue;
      }
      const invalid = record.findIndex((field) => field.includes('\uFFFD'));
      if (invalid >= 0) {
        yield { line, externalId: null, reason: `invalid UTF-8 in field ${invalid + 1}` };
        continue;
      }
      yield mapper(record, line);
    }
  } catch (error) {
    if (error instanceof CsvError) {
      const line = (error as CsvError & { lines?: number }).lines ?? 0;
      throw new ImportFileError(line, `malformed CSV at line ${line}: ${error.message}`);
    }
    throw error;
  } finally {
    input.destroy();
  }
  if (mapper === undefined) throw new ImportFileError(1, 'the file is empty: no header row');
}

function assertValidText(fields: string[], line: number, what: string): void {
  if (fields.some((field) => field.includes('\uFFFD'))) {
    throw new ImportFileError(line, `invalid UTF-8 in the ${what}`);
  }
}

function columnIndexes(header: string[], required: string[]): Map<string, number> {
  const indexes = new Map<string, number>();
  header.forEach((name, index) => indexes.set(name, index));
  const missing = required.filter((name) => !indexes.has(name));
  if (missing.length > 0) {
    throw new ImportFileError(1, `missing required column(s): ${missing.join(', ')}`);
  }
  return indexes;
}

class RowProblem extends Error {}

function awsMapper(header: string[]): RowMapper {
  const columns = columnIndexes(header, AWS_REQUIRED);
  const optional = ['cert_1_active', 'cert_2_active'].filter((name) => columns.has(name));
  return (fields, line) => {
    const value = (name: string): string => fields[columns.get(name)!].trim();
    const user = value('user');
    try {
      if (user === '') throw new RowProblem('missing value in column user');
      const isRoot = user === AWS_ROOT;
      const passwordEnabled = awsBoolean(value('password_enabled'), 'password_enabled', isRoot);
      const key1 = awsBoolean(value('access_key_1_active'), 'access_key_1_active', false);
      const key2 = awsBoolean(value('access_key_2_active'), 'access_key_2_active', false);
      const certs = optional.map((name) => awsBoolean(value(name), name, false));
      const mfa = awsBoolean(value('mfa_active'), 'mfa_active', false);
      const lastUsed = latest([
        awsDate(value('password_last_used'), 'password_last_used'),
        awsDate(value('access_key_1_last_used_date'), 'access_key_1_last_used_date'),
        awsDate(value('access_key_2_last_used_date'), 'access_key_2_last_used_date'),
      ]);
      // The root user always exists and cannot be switched off, so it counts as active.
      const anyCredential = isRoot || passwordEnabled || key1 || key2 || certs.some(Boolean);
      return {
        line,
        externalId: user,
        name: user,
        privilege: isRoot ? 'admin' : 'unknown',
        mfaState: mfa ? 'enabled' : 'disabled',
        status: anyCredential ? 'active' : 'disabled',
        lastUsedAt: lastUsed,
        attributes: {
          arn: value('arn'),
          passwordEnabled: value('password_enabled').toLowerCase(),
          accessKey1Active: value('access_key_1_active').toLowerCase(),
          accessKey2Active: value('access_key_2_active').toLowerCase(),
        },
      };
    } catch (error) {
      if (!(error instanceof RowProblem)) throw error;
      return { line, externalId: user === '' ? null : user, reason: error.message };
    }
  };
}

function awsBoolean(raw: string, column: string, allowNotSupported: boolean): boolean {
  const lower = raw.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  if (allowNotSupported && lower === 'not_supported') return false;
  throw new RowProblem(`invalid value "${raw}" in column ${column}: expected true or false`);
}

function awsDate(raw: string, column: string): Date | null {
  if (AWS_NO_DATE.includes(raw.toLowerCase())) return null;
  return parseDate(raw, column);
}

function parseDate(raw: string, column: string): Date {
  const time = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : NaN;
  if (Number.isNaN(time)) {
    throw new RowProblem(`invalid date "${raw}" in column ${column}: expected ISO 8601`);
  }
  return new Date(time);
}

function latest(dates: (Date | null)[]): Date | null {
  let result: Date | null = null;
  for (const date of dates) {
    if (date !== null && (result === null || date.getTime() > result.getTime())) result = date;
  }
  return result;
}

function genericMapper(header: string[], mapping: Record<string, string>): RowMapper {
  const columns = columnIndexes(header, Object.values(mapping));
  return (fields, line) => {
    const value = (field: string): string | undefined =>
      mapping[field] === undefined ? undefined : fields[columns.get(mapping[field])!].trim();
    const externalId = value('externalId')!;
    try {
      if (externalId === '') {
        throw new RowProblem(`missing value in column ${mapping.externalId}`);
      }
      if (externalId.length > 300) {
        throw new RowProblem(`account id in column ${mapping.externalId} is over 300 characters`);
      }
      const lastUsed = value('lastUsed');
      const enabled = value('enabled');
      return {
        line,
        externalId,
        name: (value('name') || externalId).slice(0, 300),
        privilege: genericPrivilege(value('privilege'), mapping.privilege),
        mfaState: genericMfa(value('mfa'), mapping.mfa),
        status:
          enabled === undefined || genericBoolean(enabled, mapping.enabled) ? 'active' : 'disabled',
        lastUsedAt:
          lastUsed === undefined || ['', 'never', 'n/a'].includes(lastUsed.toLowerCase())
            ? null
            : parseDate(lastUsed, mapping.lastUsed),
        attributes: {},
      };
    } catch (error) {
      if (!(error instanceof RowProblem)) throw error;
      return { line, externalId: externalId === '' ? null : externalId, reason: error.message };
    }
  };
}

function genericPrivilege(raw: string | undefined, column: string | undefined): Privilege {
  if (raw === undefined || raw === '') return 'unknown';
  const privilege = PRIVILEGE_WORDS[raw.toLowerCase()];
  if (privilege === undefined) {
    throw new RowProblem(
      `unknown privilege "${raw}" in column ${column}: use admin, privileged, standard or read-only`,
    );
  }
  return privilege;
}

function genericMfa(raw: string | undefined, column: string | undefined): MfaState {
  if (raw === undefined || raw === '' || raw.toLowerCase() === 'unknown') return 'unknown';
  return genericBoolean(raw, column ?? 'mfa') ? 'enabled' : 'disabled';
}

function genericBoolean(raw: string, column: string): boolean {
  const lower = raw.toLowerCase();
  if (TRUE_WORDS.includes(lower)) return true;
  if (FALSE_WORDS.includes(lower)) return false;
  throw new RowProblem(`invalid value "${raw}" in column ${column}: expected true or false`);
}

export function isRejected(row: RowResult): row is RejectedRow {
  return 'reason' in row;
}
