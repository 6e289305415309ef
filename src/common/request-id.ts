import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const ACCEPTED_ID = /^[A-Za-z0-9._-]{8,100}$/;

/**
 * Takes the caller's x-request-id when it is a plain token, else makes a UUID. The id is stored on
 * the raw request so Fastify, the pino request logger and the audit context all use the same one.
 */
export function assignRequestId(request: IncomingMessage): string {
  const header = request.headers['x-request-id'];
  const id = typeof header === 'string' && ACCEPTED_ID.test(header) ? header : randomUUID();
  (request as IncomingMessage & { id?: string }).id = id;
  return id;
}
