import { DomainError } from './errors';
import { currentContext } from './request-context';

/**
 * Object check for system owners: a caller whose only qualifying role is system-owner may act on
 * a system only when they own it. Callers holding one of `unrestrictedRoles`, and work with no
 * signed-in user (jobs, operator commands), pass.
 */
export function assertMayActOnSystem(
  systemId: string,
  ownerId: string | null,
  unrestrictedRoles: string[],
): void {
  const user = currentContext()?.user;
  if (!user) return;
  if (user.roles.some((role) => unrestrictedRoles.includes(role))) return;
  if (ownerId !== null && ownerId === user.id) return;
  throw new DomainError(
    403,
    'AUTH.NOT_OWNER',
    `Only the owner of system ${systemId} may change it`,
    { systemId },
  );
}
