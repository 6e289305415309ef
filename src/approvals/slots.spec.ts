import { assignSlot, isSatisfied, rejectionIsBinding } from './slots';
import type { FilledSlot, SlotPolicy } from './slots';

const policy = (overrides: Partial<SlotPolicy> = {}): SlotPolicy => ({
  requiredApprovals: 2,
  requiredRoles: ['security-approver', 'system-owner'],
  requesterId: 'requester',
  ownerId: 'owner',
  ownerManagerId: 'owners-manager',
  ...overrides,
});

describe('approval slots', () => {
  it('refuses the requester even when they hold every role', () => {
    const result = assignSlot(policy(), [], {
      id: 'requester',
      roles: ['security-approver', 'platform-admin'],
    });
    expect(result).toEqual({ ok: false, refusal: 'SELF_APPROVAL' });
  });

  it('gives the owner slot to the owner, and to the manager when the owner requests', () => {
    expect(assignSlot(policy(), [], { id: 'owner', roles: ['system-owner'] })).toEqual({
      ok: true,
      slot: 'system-owner',
      onBehalfOfOwner: false,
    });
    const ownerRequests = policy({ requesterId: 'owner' });
    expect(assignSlot(ownerRequests, [], { id: 'owners-manager', roles: ['manager'] })).toEqual({
      ok: true,
      slot: 'system-owner',
      onBehalfOfOwner: true,
    });
    expect(assignSlot(ownerRequests, [], { id: 'someone', roles: ['manager'] })).toEqual({
      ok: false,
      refusal: 'NOT_ELIGIBLE',
    });
  });

  it('lets one person fill one slot only', () => {
    const filled: FilledSlot[] = [{ approverId: 'a1', slot: 'security-approver' }];
    expect(assignSlot(policy(), filled, { id: 'a1', roles: ['security-approver'] })).toEqual({
      ok: false,
      refusal: 'ALREADY_DECIDED',
    });
    expect(assignSlot(policy(), filled, { id: 'a2', roles: ['security-approver'] })).toEqual({
      ok: false,
      refusal: 'NO_OPEN_SLOT',
    });
  });

  it('prefers the owner slot for an owner who is also a security approver', () => {
    const result = assignSlot(policy(), [], {
      id: 'owner',
      roles: ['security-approver', 'system-owner'],
    });
    expect(result).toMatchObject({ ok: true, slot: 'system-owner' });
  });

  it('needs every required slot and the total count', () => {
    const three = policy({ requiredApprovals: 3 });
    const two: FilledSlot[] = [
      { approverId: 'a1', slot: 'security-approver' },
      { approverId: 'owner', slot: 'system-owner' },
    ];
    expect(isSatisfied(three, two)).toBe(false);
    expect(isSatisfied(three, [...two, { approverId: 'a2', slot: 'any' }])).toBe(true);
    expect(
      isSatisfied(policy(), [
        { approverId: 'a1', slot: 'security-approver' },
        { approverId: 'a2', slot: 'any' },
      ]),
    ).toBe(false);
  });

  it('makes a rejection binding only for holders of a required slot', () => {
    expect(rejectionIsBinding(policy(), { id: 'a1', roles: ['security-approver'] })).toBe(true);
    expect(rejectionIsBinding(policy(), { id: 'x', roles: ['platform-admin'] })).toBe(false);
    expect(
      rejectionIsBinding(policy({ requiredRoles: [] }), { id: 'x', roles: ['platform-admin'] }),
    ).toBe(true);
  });
});
