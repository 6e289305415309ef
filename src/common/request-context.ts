import { AsyncLocalStorage } from 'node:async_hooks';

import { DomainError } from './errors';

/** The signed-in person behind a request. */
export interface CurrentUser {
  id: string;
  email: string;
  roles: string[];
}

/** The acting person or process and its request, read by the audit trail and object checks. */
export interface RequestContext {
  requestId: string;
  clientAddress: string | undefined;
  actor: string;
  /** api, session, job, cli, system, or api-token:<token id> for a personal API token. */
  channel: string;
  user?: CurrentUser;
  sessionId?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithContext<T>(context: RequestContext, work: () => T): T {
  return storage.run(context, work);
}

export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

/**
 * Returns the signed-in person of the current request, or raises 401 `AUTH.REQUIRED`. Routes that
 * act for a person call it; the access guard has already let the request through.
 */
export function requireSignedInUser(): CurrentUser {
  const user = currentContext()?.user;
  if (!user) throw new DomainError(401, 'AUTH.REQUIRED', 'Sign in first');
  return user;
}
