import { Client } from 'pg';

type QueryFunction = (this: Client, ...args: unknown[]) => unknown;

/**
 * Runs `work` while recording the text of every statement sent through any pg Client in this
 * process, TypeORM's pool included, then restores pg. Use it for a single probe request, not
 * under load, because the wrapper adds work to every query.
 */
export async function captureSql<T>(
  work: () => Promise<T>,
): Promise<{ result: T; statements: string[] }> {
  const prototype = Client.prototype as unknown as { query: QueryFunction };
  const original = prototype.query;
  const statements: string[] = [];
  prototype.query = function (this: Client, ...args: unknown[]): unknown {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: unknown } | null)?.text;
    if (typeof text === 'string') statements.push(text);
    return original.apply(this, args);
  };
  try {
    const result = await work();
    return { result, statements };
  } finally {
    prototype.query = original;
  }
}
