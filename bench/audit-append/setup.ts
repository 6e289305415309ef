/** Rows of `providers` that the writers update. */
export const PROVIDER_COUNT = 1000;

/**
 * Schema of the unchained baseline. Its audit_events is a copy of public.audit_events without the
 * audit_seal() trigger, so a connection whose search_path starts with this schema runs the
 * unchanged INSERT of AuditService.record() against the copy.
 */
export const PLAIN_SCHEMA = 'bench_plain';

/** Length of a provider description, chosen so that one event's before and after total ~1 KB. */
export const DESCRIPTION_LENGTH = 330;

const DESCRIPTION_TEXT =
  'Remote-management agent approved for the operations network after the vendor security ' +
  'review; administrative access is limited to the platform team and reviewed every quarter. ';

/** Builds a provider description of DESCRIPTION_LENGTH characters that starts with `label`. */
export function providerDescription(label: string): string {
  const text = `${label}: ${DESCRIPTION_TEXT.repeat(4)}`;
  return text.slice(0, DESCRIPTION_LENGTH);
}

/**
 * Inserts PROVIDER_COUNT providers and creates PLAIN_SCHEMA.audit_events with the columns,
 * defaults, constraints and indexes of audit_events (LIKE … INCLUDING ALL never copies triggers).
 * `seq` becomes an identity column, and prev_hash and hash may be null, because no trigger fills
 * them. Nothing here runs in a migration: it exists only in the benchmark's database.
 */
export const SETUP_SQL = `
  INSERT INTO providers (name, website, description, created_at, updated_at)
  SELECT format('Audit provider %s', lpad(i::text, 4, '0')),
         format('https://provider-%s.example.com', i),
         '${providerDescription('Seeded')}',
         now(), now()
  FROM generate_series(1, ${PROVIDER_COUNT}) AS i;
  ANALYZE providers;

  CREATE SCHEMA ${PLAIN_SCHEMA};
  CREATE TABLE ${PLAIN_SCHEMA}.audit_events (LIKE public.audit_events INCLUDING ALL);
  ALTER TABLE ${PLAIN_SCHEMA}.audit_events
    ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY,
    ALTER COLUMN prev_hash DROP NOT NULL,
    ALTER COLUMN hash DROP NOT NULL;
`;
