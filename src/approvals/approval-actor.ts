import { DomainError } from '../common/errors';
import { currentContext } from '../common/request-context';
import type { CurrentUser } from '../common/request-context';

/** The signed-in person acting on a request; approval work never runs without one. */
export function actingUser(): CurrentUser {
  const user = currentContext()?.user;
  if (!user) throw new DomainError(401, 'AUTH.REQUIRED', 'Sign in to act on tool requests');
  return user;
}
