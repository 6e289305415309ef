/**
 * Separation of duties for tool approvals, as pure rules: which approval slots a policy opens,
 * who may fill each, and when a request has all it needs.
 *
 * A policy lists required roles (a role may appear more than once, one slot each) and a total
 * count; the count beyond the required roles opens general slots. The pseudo-role `system-owner`
 * is the system's owner; when the owner is the requester, that slot goes to the owner's manager
 * or a platform admin. The requester fills no slot, and one person fills at most one slot.
 */

export const OWNER_SLOT = 'system-owner';
export const GENERAL_SLOT = 'any';
/** Roles that may fill a general slot. */
export const APPROVING_ROLES = ['security-approver', 'platform-admin'];

export interface SlotPolicy {
  requiredApprovals: number;
  requiredRoles: string[];
  requesterId: string;
  ownerId: string | null;
  ownerManagerId: string | null;
}

export interface Approver {
  id: string;
  roles: string[];
}

export interface FilledSlot {
  approverId: string;
  slot: string;
}

export type SlotRefusal = 'SELF_APPROVAL' | 'ALREADY_DECIDED' | 'NOT_ELIGIBLE' | 'NO_OPEN_SLOT';

export type SlotAssignment =
  { ok: true; slot: string; onBehalfOfOwner: boolean } | { ok: false; refusal: SlotRefusal };

/** Returns the order in which an approval fills slots: the owner's, then a role's, then general. */
function slotRank(slot: string): number {
  if (slot === OWNER_SLOT) return 0;
  if (slot === GENERAL_SLOT) return 2;
  return 1;
}

export function slotsOf(policy: SlotPolicy): string[] {
  const general = Math.max(policy.requiredApprovals - policy.requiredRoles.length, 0);
  return [...policy.requiredRoles, ...Array<string>(general).fill(GENERAL_SLOT)];
}

/** Returns true when someone else fills the owner slot: the owner filed the request, or there is no owner. */
function ownerSlotDelegated(policy: SlotPolicy): boolean {
  return policy.ownerId === null || policy.ownerId === policy.requesterId;
}

export function mayFill(policy: SlotPolicy, approver: Approver, slot: string): boolean {
  if (approver.id === policy.requesterId) return false;
  if (slot === OWNER_SLOT) {
    if (!ownerSlotDelegated(policy)) return approver.id === policy.ownerId;
    return approver.id === policy.ownerManagerId || approver.roles.includes('platform-admin');
  }
  if (slot === GENERAL_SLOT) {
    return (
      approver.roles.some((role) => APPROVING_ROLES.includes(role)) ||
      mayFill(policy, approver, OWNER_SLOT)
    );
  }
  return approver.roles.includes(slot);
}

function openSlots(policy: SlotPolicy, filled: FilledSlot[]): string[] {
  const open = slotsOf(policy);
  for (const { slot } of filled) {
    const index = open.indexOf(slot);
    if (index >= 0) open.splice(index, 1);
  }
  return open;
}

/**
 * Chooses the slot an approval fills. Required slots come before general ones, and the owner's
 * slot first among them, since fewest people can fill it.
 */
export function assignSlot(
  policy: SlotPolicy,
  filled: FilledSlot[],
  approver: Approver,
): SlotAssignment {
  if (approver.id === policy.requesterId) return { ok: false, refusal: 'SELF_APPROVAL' };
  if (filled.some((slot) => slot.approverId === approver.id)) {
    return { ok: false, refusal: 'ALREADY_DECIDED' };
  }
  if (!slotsOf(policy).some((slot) => mayFill(policy, approver, slot))) {
    return { ok: false, refusal: 'NOT_ELIGIBLE' };
  }

  const candidates = openSlots(policy, filled)
    .filter((slot) => mayFill(policy, approver, slot))
    .sort((a, b) => slotRank(a) - slotRank(b));
  if (candidates.length === 0) return { ok: false, refusal: 'NO_OPEN_SLOT' };
  const slot = candidates[0];
  return { ok: true, slot, onBehalfOfOwner: slot === OWNER_SLOT && ownerSlotDelegated(policy) };
}

export function isSatisfied(policy: SlotPolicy, filled: FilledSlot[]): boolean {
  return (
    filled.length >= policy.requiredApprovals &&
    openSlots(policy, filled).every((slot) => slot === GENERAL_SLOT)
  );
}

/**
 * Returns true when this person's rejection ends the request: they could fill a required slot,
 * or the policy names no required role and they may approve at all.
 */
export function rejectionIsBinding(policy: SlotPolicy, approver: Approver): boolean {
  if (approver.id === policy.requesterId) return false;
  if (policy.requiredRoles.length === 0) return mayFill(policy, approver, GENERAL_SLOT);
  return policy.requiredRoles.some((slot) => mayFill(policy, approver, slot));
}
