export const PRIVILEGES = ['admin', 'privileged', 'standard', 'read-only', 'unknown'] as const;
export type Privilege = (typeof PRIVILEGES)[number];
/** Privileges a grant can request; `unknown` exists only for imported accounts. */
export const GRANTABLE_PRIVILEGES = ['admin', 'privileged', 'standard', 'read-only'] as const;
export type GrantablePrivilege = (typeof GRANTABLE_PRIVILEGES)[number];

/** `admin` accounts are used only to administer; admin privilege on an `everyday` one is a finding. */
export const PURPOSES = ['admin', 'everyday'] as const;
export type Purpose = (typeof PURPOSES)[number];

export const MFA_STATES = ['enabled', 'disabled', 'unknown'] as const;
export type MfaState = (typeof MFA_STATES)[number];

export const ACCOUNT_STATUSES = ['active', 'disabled', 'removed'] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];

export const GRANT_STATUSES = [
  'pending',
  'approved',
  'active',
  'rejected',
  'revoked',
  'expired',
] as const;
export type GrantStatus = (typeof GRANT_STATUSES)[number];

export const FINDING_TYPES = [
  'unapproved-access',
  'credential-reuse',
  'admin-without-mfa',
  'admin-on-everyday-account',
  'provider-account-conflict',
] as const;
export type FindingType = (typeof FINDING_TYPES)[number];

export const FINDING_STATUSES = ['open', 'risk-accepted', 'resolved'] as const;
export type FindingStatus = (typeof FINDING_STATUSES)[number];

export const TASK_STATUSES = ['open', 'executed', 'verified', 'not-effective'] as const;

/** Days from opening a de-provisioning task to its due date. */
export const DEPROVISIONING_SLA_DAYS = 7;
