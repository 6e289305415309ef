export const ROLES = [
  'platform-admin',
  'security-approver',
  'system-owner',
  'manager',
  'requester',
  'auditor',
] as const;
export type Role = (typeof ROLES)[number];

const EVERYONE: readonly Role[] = ROLES;

/**
 * The one table of who may do what. Routes name a permission; the guard allows a caller holding
 * any listed role. Object checks (an owner acts only on owned systems) happen in the services.
 */
export const PERMISSIONS = {
  'catalog.read': EVERYONE,
  'catalog.write': ['platform-admin'],
  'catalog.system.update': ['platform-admin', 'system-owner'],
  'kev.read': EVERYONE,
  'kev.import': ['platform-admin', 'security-approver'],
  'kev.alias.write': ['platform-admin', 'security-approver'],
  'findings.read': EVERYONE,
  'findings.write': ['platform-admin', 'security-approver', 'system-owner'],
  'audit.read': ['platform-admin', 'security-approver', 'auditor'],
  'users.read': ['platform-admin', 'auditor', 'manager', 'security-approver'],
  'users.write': ['platform-admin'],
  'notifications.admin': ['platform-admin'],
  'approvals.read': EVERYONE,
  'approvals.request': ['platform-admin', 'security-approver', 'system-owner', 'requester'],
  /** Security evaluation answers. The service limits owners to their own systems. */
  'approvals.evaluate': ['platform-admin', 'security-approver', 'system-owner', 'requester'],
  /** Approval decisions. The policy's slots decide who may fill which, and an owner's manager may fill the owner's slot. */
  'approvals.decide': ['platform-admin', 'security-approver', 'system-owner', 'manager'],
  'approvals.override': ['platform-admin'],
  'approvals.policy.write': ['platform-admin'],
  'reviews.read': EVERYONE,
  /** Review policies; owners only for their own systems (checked in the service). */
  'reviews.policy.write': ['platform-admin', 'system-owner'],
  'reviews.campaign.open': ['platform-admin', 'security-approver', 'system-owner'],
  /** Deciding and reassigning; the service allows only the item's reviewer or a platform admin. */
  'reviews.decide': ['platform-admin', 'security-approver', 'system-owner', 'manager', 'requester'],
  'access.read': EVERYONE,
  'access.request': ['platform-admin', 'security-approver', 'system-owner', 'manager', 'requester'],
  'access.approve': ['platform-admin', 'security-approver', 'system-owner', 'manager'],
  'access.provision': ['platform-admin', 'system-owner'],
  'access.revoke': ['platform-admin', 'security-approver', 'system-owner'],
  'access.import': ['platform-admin', 'security-approver', 'system-owner'],
  'access.transfer': ['platform-admin', 'security-approver'],
  'access.findings.accept': ['security-approver'],
  /** Reading what reminders a review campaign sent; the service limits owners to their systems. */
  'reviews.reminders.read': ['platform-admin', 'security-approver', 'system-owner', 'auditor'],
  self: EVERYONE,
  /** Reachable before a required second factor is enrolled: who am I, enrolment, sign-out. */
  'self.mfa': EVERYONE,
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

/**
 * Permissions that change state for privileged roles. A user whose role requires MFA reaches them
 * only through a session that passed the second factor, never through an API token.
 */
export const MFA_GATED: readonly Permission[] = [
  'catalog.write',
  'catalog.system.update',
  'kev.import',
  'kev.alias.write',
  'findings.write',
  'users.write',
  'notifications.admin',
  'approvals.decide',
  'approvals.override',
  'approvals.policy.write',
  'reviews.policy.write',
  'reviews.campaign.open',
  'access.approve',
  'access.provision',
  'access.revoke',
  'access.import',
  'access.transfer',
  'access.findings.accept',
];

export function allows(permission: Permission, roles: readonly Role[]): boolean {
  const allowed: readonly Role[] = PERMISSIONS[permission];
  return roles.some((role) => allowed.includes(role));
}
