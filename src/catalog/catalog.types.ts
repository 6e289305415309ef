export const SYSTEM_CATEGORIES = [
  'remote-management',
  'software-deployment',
  'remote-support',
  'ci-cd',
  'patch-management',
  'other',
] as const;
export type SystemCategory = (typeof SYSTEM_CATEGORIES)[number];

export const CRITICALITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Criticality = (typeof CRITICALITIES)[number];

/** planned → active → retired; a retired system keeps its history and cannot be edited. */
export const LIFECYCLE_STATUSES = ['planned', 'active', 'retired'] as const;
export type LifecycleStatus = (typeof LIFECYCLE_STATUSES)[number];

export interface SystemHost {
  /** Fully qualified host name. */
  hostname: string;
  address?: string;
  role?: string;
}
