import Fastify from 'fastify';
import { Pool, PoolConfig } from 'pg';

import { dataSourceOptions } from '../../src/database/data-source';
import { baseUrl, RunningServer } from '../support/server';

/**
 * Returns the statement that TypeORM 1.1.3 generates for `GET /api/systems?limit=…&offset=…` with the
 * default sort (name, then id, ascending). The benchmark checks that the service still sends this
 * exact text before it compares the two servers.
 */
export function systemsPageSql(limit: number, offset: number): string {
  return (
    'SELECT "s"."id" AS "s_id", "s"."provider_id" AS "s_provider_id", "s"."name" AS "s_name", ' +
    '"s"."product" AS "s_product", "s"."product_version" AS "s_product_version", ' +
    '"s"."category" AS "s_category", "s"."criticality" AS "s_criticality", ' +
    '"s"."owner_id" AS "s_owner_id", "s"."owner_email" AS "s_owner_email", "s"."hosts" AS "s_hosts", ' +
    '"s"."network_zone" AS "s_network_zone", "s"."deploys_software" AS "s_deploys_software", ' +
    '"s"."lifecycle_status" AS "s_lifecycle_status", "s"."retired_at" AS "s_retired_at", ' +
    '"s"."created_at" AS "s_created_at", "s"."updated_at" AS "s_updated_at", ' +
    '"s"."version" AS "s_version" FROM "systems" "s" ORDER BY "s"."name" ASC, "s"."id" ASC ' +
    // The service fetches one row more than the page size to learn whether a next page exists.
    `LIMIT ${limit + 1} OFFSET ${offset}`
  );
}

interface SystemRow {
  s_id: string;
  s_provider_id: string;
  s_name: string;
  s_product: string;
  s_product_version: string | null;
  s_category: string;
  s_criticality: string;
  s_owner_id: string | null;
  s_owner_email: string | null;
  s_hosts: unknown;
  s_network_zone: string | null;
  s_deploys_software: boolean;
  s_lifecycle_status: string;
  s_retired_at: Date | null;
  s_created_at: Date;
  s_updated_at: Date;
  s_version: number;
}

const MAX_LIMIT = 200;
const MAX_OFFSET = 1_000_000;

/**
 * Starts a plain Fastify server whose only route runs the service's list query through a pg pool
 * configured like the service's TypeORM pool, and returns the same JSON page. It has no Nest, no
 * validation pipe and no request logging, so it is the baseline the service is compared with.
 */
export async function startBareServer(databaseUrl: string): Promise<RunningServer> {
  const { extra } = dataSourceOptions(databaseUrl) as { extra: PoolConfig };
  const pool = new Pool({ connectionString: databaseUrl, ...extra });
  let closing = false;
  // pg emits errors of idle clients on the pool, and an unhandled one would end the process. While
  // closing they are expected, because the benchmark drops the database right after.
  pool.on('error', (error) => {
    if (!closing) {
      console.error(`Idle PostgreSQL client of the bare server failed: ${error.message}`);
    }
  });
  const app = Fastify({ logger: false });

  app.get('/api/systems', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    const limit = parseInteger(query.limit, 50, 1, MAX_LIMIT);
    const offset = parseInteger(query.offset, 0, 0, MAX_OFFSET);
    if (limit === undefined || offset === undefined) {
      const message =
        `limit must be an integer from 1 to ${MAX_LIMIT} ` +
        `and offset an integer from 0 to ${MAX_OFFSET}`;
      return reply.code(400).send({ message });
    }

    const { rows } = await pool.query<SystemRow>(systemsPageSql(limit, offset));
    const hasMore = rows.length > limit;
    return {
      items: rows.slice(0, limit).map(toSystem),
      limit,
      offset,
      nextOffset: hasMore ? offset + limit : null,
    };
  });

  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
  } catch (error) {
    closing = true;
    await pool.end();
    throw error;
  }
  return {
    url: baseUrl(app.server.address()),
    headers: {},
    close: async () => {
      closing = true;
      await app.close();
      await pool.end();
    },
  };
}

function parseInteger(
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number | undefined {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) return undefined;
  const value = Number(raw);
  return value >= min && value <= max ? value : undefined;
}

/** Maps a row to the property names and order of the ThirdPartySystem entity. */
function toSystem(row: SystemRow): Record<string, unknown> {
  return {
    id: row.s_id,
    providerId: row.s_provider_id,
    name: row.s_name,
    product: row.s_product,
    productVersion: row.s_product_version,
    category: row.s_category,
    criticality: row.s_criticality,
    ownerId: row.s_owner_id,
    ownerEmail: row.s_owner_email,
    hosts: row.s_hosts,
    networkZone: row.s_network_zone,
    deploysSoftware: row.s_deploys_software,
    lifecycleStatus: row.s_lifecycle_status,
    retiredAt: row.s_retired_at,
    createdAt: row.s_created_at,
    updatedAt: row.s_updated_at,
    version: row.s_version,
  };
}
