import { AsyncLocalStorage } from 'node:async_hooks';

/** Who is acting and through which request; read by the audit trail. */
export interface RequestContext {
  requestId: string;
  clientAddress: string | undefined;
  actor: string;
  channel: 'api' | 'job' | 'cli' | 'system';
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithContext<T>(context: RequestContext, work: () => T): T {
  return storage.run(context, work);
}

export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}
