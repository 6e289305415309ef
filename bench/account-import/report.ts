import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

/** Header of the AWS IAM credential report, in the documented column order. */
export const AWS_HEADER =
  'user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,' +
  'password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,' +
  'access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,' +
  'access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,' +
  'access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,' +
  'cert_1_last_rotated,cert_2_active,cert_2_last_rotated';

async function writeLines(path: string, lines: Iterable<string>): Promise<void> {
  const out = createWriteStream(path);
  for (const line of lines) {
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

function* reportLines(rows: number): Generator<string> {
  yield `${AWS_HEADER}\n`;
  yield (
    '<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,' +
    '2025-12-01T10:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,' +
    'N/A,N/A,N/A,N/A,false,N/A,false,N/A\n'
  );
  for (let i = 1; i < rows; i++) {
    const mfa = i % 3 === 0 ? 'false' : 'true';
    const key = i % 2 === 0 ? 'true' : 'false';
    const used = key === 'true' ? '2025-12-30T09:00:00+00:00,us-east-1,s3' : 'N/A,N/A,N/A';
    yield (
      `user-${i},arn:aws:iam::123456789012:user/user-${i},2021-03-04T05:06:07+00:00,true,` +
      `2025-12-20T08:00:00+00:00,2025-06-01T00:00:00+00:00,N/A,${mfa},${key},` +
      `2025-01-01T00:00:00+00:00,${used},false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n`
    );
  }
}

/** Writes a credential report of `rows` users (the root user first). */
export function writeCredentialReport(path: string, rows: number): Promise<void> {
  return writeLines(path, reportLines(rows));
}

/** Columns of `accounts` that the COPY baseline fills, in file order. */
export const ACCOUNT_COPY_COLUMNS =
  'system_id, external_id, name, privilege, purpose, mfa_state, status, origin, last_used_at, ' +
  'attributes, created_at, updated_at';

function* copyLines(rows: number, systemId: string, now: string): Generator<string> {
  const attributes =
    '"{""arn"": ""arn:aws:iam::123456789012:user/x"", ""passwordEnabled"": ""true""}"';
  yield (
    `${systemId},<root_account>,<root_account>,admin,admin,enabled,active,imported,` +
    `2025-12-01T10:00:00Z,${attributes},${now},${now}\n`
  );
  for (let i = 1; i < rows; i++) {
    const mfa = i % 3 === 0 ? 'disabled' : 'enabled';
    yield (
      `${systemId},user-${i},user-${i},unknown,everyday,${mfa},active,imported,` +
      `2025-12-30T09:00:00Z,${attributes},${now},${now}\n`
    );
  }
}

/** Writes the rows the import creates from the same report, as CSV for COPY into accounts. */
export function writeAccountCopyFile(
  path: string,
  rows: number,
  systemId: string,
  now: string,
): Promise<void> {
  return writeLines(path, copyLines(rows, systemId, now));
}
