import { randomBytes } from 'node:crypto';

import { TestApp } from './app';
import { markSystemApproved } from './approvals';

/** Creates a provider, or returns the id of the one with that name. */
export async function ensureProvider(t: TestApp, name: string): Promise<string> {
  const created = await t.request({ method: 'POST', url: '/api/providers', payload: { name } });
  if (created.statusCode === 201) return created.json().id;
  const list = await t.request({
    method: 'GET',
    url: `/api/providers?q=${encodeURIComponent(name)}`,
  });
  return list.json().items[0].id;
}

/** Creates a system owned by the harness system owner and approved through next year. */
export async function approvedSystem(
  t: TestApp,
  options: { criticality?: string; provider?: string; approved?: boolean } = {},
): Promise<string> {
  const providerId = await ensureProvider(t, options.provider ?? 'ConnectWise');
  const response = await t.request({
    method: 'POST',
    url: '/api/systems',
    payload: {
      providerId,
      name: `ScreenConnect ${randomBytes(4).toString('hex')}`,
      product: 'ScreenConnect',
      category: 'remote-support',
      criticality: options.criticality ?? 'high',
      ownerId: t.users['system-owner'].id,
    },
  });
  if (response.statusCode !== 201) throw new Error(`system not created: ${response.body}`);
  const id: string = response.json().id;
  if (options.approved !== false) {
    await markSystemApproved(t.databaseUrl, id, t.users.requester.id, new Date('2027-12-31'));
  }
  return id;
}

/** Creates a user with the requester role and returns its id. */
export async function createPerson(t: TestApp, label: string): Promise<string> {
  const response = await t.request({
    method: 'POST',
    url: '/api/users',
    payload: {
      email: `${label}.${randomBytes(4).toString('hex')}@test.example`,
      name: label,
      roles: ['requester'],
    },
  });
  if (response.statusCode !== 201) throw new Error(`user not created: ${response.body}`);
  return response.json().id;
}
