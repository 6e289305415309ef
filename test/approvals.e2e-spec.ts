import { randomBytes } from 'node:crypto';

import { ApprovalDecisionsService } from '../src/approvals/approval-decisions.service';
import { EVALUATION_ITEM_KEYS } from '../src/approvals/evaluation';
import { assertSystemApproved } from '../src/approvals/system-approval';
import { DataSource } from 'typeorm';
import { startTestApp, TestApp, TestUser } from './support/app';
import { superuserQuery } from './support/database';

const DAY = 86_400_000;

interface RequestBody {
  id: string;
  status: string;
  effectiveStatus: string;
  round: number;
  version: number;
  policy: { id: string; version: number };
  approvals: {
    required: number;
    received: number;
    overridden: boolean;
    slots: { slot: string; approverId: string | null; onBehalfOfOwner: boolean }[];
  };
  evaluation: {
    complete: boolean;
    passing: boolean;
    items: { item: string; problem: string | null }[];
  };
  approvedUntil: string | null;
}

const YES_DETAILS: Record<string, Record<string, string>> = {
  'provider-assessment': { reportType: 'SOC 2 Type II', reportDate: '2026-06-30' },
  'supported-version': { patchCadence: 'monthly' },
};

describe('tool approvals', () => {
  let t: TestApp;
  let providerId: string;

  beforeAll(async () => {
    t = await startTestApp({ env: { EVIDENCE_MAX_BYTES: '2048' } });
    const provider = await t.request({
      method: 'POST',
      url: '/api/providers',
      payload: { name: 'ConnectWise' },
    });
    providerId = provider.json().id;
  });

  afterAll(async () => {
    await t.close();
  });

  async function createSystem(
    overrides: Record<string, unknown> = {},
  ): Promise<{ id: string; hosts: { hostname: string }[] }> {
    const response = await t.request({
      method: 'POST',
      url: '/api/systems',
      payload: {
        providerId,
        name: `ScreenConnect ${randomBytes(3).toString('hex')}`,
        product: 'ScreenConnect',
        category: 'remote-support',
        criticality: 'medium',
        hosts: [{ hostname: 'sc01.corp.example.com', address: '10.0.0.5' }],
        ...overrides,
      },
    });
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  async function as(user: TestUser, method: string, url: string, payload?: object) {
    return t.requestAs(user, { method: method, url, payload });
  }

  /** Drafts a request as `requester`, sets every evaluation item to yes and submits it. */
  async function submitted(
    requester: TestUser,
    systemId: string,
    extra: Record<string, unknown> = {},
  ): Promise<RequestBody> {
    const draft = await as(requester, 'POST', '/api/tool-requests', {
      systemId,
      justification: 'Remote support for the service desk',
      ...extra,
    });
    expect(draft.statusCode).toBe(201);
    const id = draft.json().id as string;
    for (const item of EVALUATION_ITEM_KEYS) {
      const answered = await as(requester, 'PUT', `/api/tool-requests/${id}/evaluation/${item}`, {
        answer: 'yes',
        evidenceText: 'Checked during evaluation',
        details: YES_DETAILS[item],
      });
      expect(answered.statusCode).toBe(200);
    }
    const submit = await as(requester, 'POST', `/api/tool-requests/${id}/submit`, {});
    expect(submit.statusCode).toBe(200);
    expect(submit.json().status).toBe('submitted');
    return submit.json();
  }

  async function readRequest(id: string): Promise<RequestBody> {
    const response = await t.request({ method: 'GET', url: `/api/tool-requests/${id}` });
    expect(response.statusCode).toBe(200);
    return response.json();
  }

  async function publishPolicy(
    body: Record<string, unknown>,
  ): Promise<{ id: string; version: number }> {
    const response = await t.request({
      method: 'POST',
      url: '/api/approval-policies',
      payload: {
        validityDays: 365,
        reapprovalNoticeDays: 30,
        mandatoryItems: ['provider-assessment', 'supported-version'],
        defaultMaxAdmins: 3,
        ...body,
      },
    });
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  async function countAudit(entityId: string, action: string): Promise<number> {
    const [row] = await superuserQuery<{ n: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS n FROM audit_events WHERE entity_id = $1 AND action = $2`,
      [entityId, action],
    );
    return row.n;
  }

  describe('C1: no self-approval on any path', () => {
    it('C1: requester rejected on every route', async () => {
      await publishPolicy({
        criticality: 'high',
        category: 'remote-management',
        requiredApprovals: 2,
        requiredRoles: ['security-approver', 'security-approver'],
      });
      const [u1, u2, u3] = await Promise.all([
        t.createUser(['security-approver']),
        t.createUser(['security-approver']),
        t.createUser(['security-approver']),
      ]);
      const system = await createSystem({ criticality: 'high', category: 'remote-management' });
      const tr1 = await submitted(u1, system.id);

      const single = await as(u1, 'POST', `/api/tool-requests/${tr1.id}/decisions`, {
        decision: 'approve',
      });
      expect(single.statusCode).toBe(403);
      expect(single.json().code).toBe('APPROVAL.SELF_APPROVAL');
      const bulk = await as(u1, 'POST', '/api/tool-requests/decisions', {
        items: [{ requestId: tr1.id, decision: 'approve' }],
      });
      expect(bulk.statusCode).toBe(200);
      expect(bulk.json().results[0]).toMatchObject({
        statusCode: 403,
        code: 'APPROVAL.SELF_APPROVAL',
      });
      const override = await as(u1, 'POST', `/api/tool-requests/${tr1.id}/override`, {
        reason: 'Needed for an outage tonight',
      });
      expect(override.statusCode).toBe(403);
      expect((await readRequest(tr1.id)).approvals.received).toBe(0);

      const first = await as(u2, 'POST', `/api/tool-requests/${tr1.id}/decisions`, {
        decision: 'approve',
      });
      expect(first.statusCode).toBe(200);
      const again = await as(u2, 'POST', `/api/tool-requests/${tr1.id}/decisions`, {
        decision: 'approve',
      });
      expect(again.statusCode).toBe(409);
      expect(again.json().code).toBe('APPROVAL.ALREADY_DECIDED');
      const afterTwice = await readRequest(tr1.id);
      expect(afterTwice.approvals.received).toBe(1);
      expect(afterTwice.status).toBe('in_review');

      const third = await as(u3, 'POST', `/api/tool-requests/${tr1.id}/decisions`, {
        decision: 'approve',
      });
      expect(third.statusCode).toBe(200);
      expect(third.json()).toMatchObject({ status: 'approved', effectiveStatus: 'approved' });
      expect(third.json().approvals.received).toBe(2);

      const approval = await t.request({
        method: 'GET',
        url: `/api/systems/${system.id}/approval`,
      });
      expect(approval.json()).toMatchObject({ approved: true, requestId: tr1.id });
    });

    it('override needs permission and reason', async () => {
      const requester = await t.createUser(['requester']);
      const system = await createSystem();
      const request = await submitted(requester, system.id);

      const approverOverride = await t.request(
        {
          method: 'POST',
          url: `/api/tool-requests/${request.id}/override`,
          payload: { reason: 'Needed for an outage tonight' },
        },
        'security-approver',
      );
      expect(approverOverride.statusCode).toBe(403);
      const noReason = await t.request({
        method: 'POST',
        url: `/api/tool-requests/${request.id}/override`,
        payload: {},
      });
      expect(noReason.statusCode).toBe(400);
      expect(noReason.json().details.fields[0].field).toBe('reason');

      const overridden = await t.request({
        method: 'POST',
        url: `/api/tool-requests/${request.id}/override`,
        payload: { reason: 'Needed for an outage tonight' },
      });
      expect(overridden.statusCode).toBe(200);
      expect(overridden.json().status).toBe('approved');
      expect(overridden.json().approvals.overridden).toBe(true);
      const [event] = await superuserQuery<{
        after: { policyOverridden: boolean; overrideReason: string };
      }>(
        t.databaseUrl,
        `SELECT after FROM audit_events WHERE entity_id = $1 AND action = 'tool_request.approved_by_override'`,
        [request.id],
      );
      expect(event.after).toMatchObject({
        policyOverridden: true,
        overrideReason: 'Needed for an outage tonight',
      });
    });
  });

  it('concurrent approvals count once each', async () => {
    await publishPolicy({
      criticality: 'high',
      category: 'ci-cd',
      requiredApprovals: 2,
      requiredRoles: [],
    });
    const requester = await t.createUser(['requester']);
    const approvers = await Promise.all([
      t.createUser(['security-approver']),
      t.createUser(['security-approver']),
      t.createUser(['security-approver']),
    ]);
    const system = await createSystem({ criticality: 'high', category: 'ci-cd' });
    const request = await submitted(requester, system.id);

    const responses = await Promise.all(
      approvers.map((approver) =>
        as(approver, 'POST', `/api/tool-requests/${request.id}/decisions`, { decision: 'approve' }),
      ),
    );
    const codes = responses.map((r) => r.statusCode).sort();
    // Two slots: two approvals count, the third finds no open slot or a final request.
    expect(codes).toEqual([200, 200, 409]);

    const read = await readRequest(request.id);
    expect(read.status).toBe('approved');
    expect(read.approvals.received).toBe(2);
    expect(await countAudit(request.id, 'tool_request.approval_recorded')).toBe(2);
    const decisions = await superuserQuery<{ n: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS n FROM approval_decisions WHERE request_id = $1`,
      [request.id],
    );
    expect(decisions[0].n).toBe(2);
    const approvedEvents = await superuserQuery<{ n: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS n FROM notification_events WHERE type = 'tool-request.approved'
          AND payload->>'requestId' = $1`,
      [request.id],
    );
    expect(approvedEvents[0].n).toBe(1);
  });

  it('owner manager fills owner slot', async () => {
    const ownersManager = await t.createUser(['manager']);
    const owner = await t.createUser(['system-owner'], { managerId: ownersManager.id });
    const otherManager = await t.createUser(['manager']);
    const approver = await t.createUser(['security-approver']);
    // The critical policy of the first migration: a security approver and the system owner.
    const system = await createSystem({ criticality: 'critical', ownerId: owner.id });
    const request = await submitted(owner, system.id);

    const self = await as(owner, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'approve',
    });
    expect(self.statusCode).toBe(403);
    const stranger = await as(otherManager, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'approve',
    });
    expect(stranger.statusCode).toBe(403);
    expect(stranger.json().code).toBe('APPROVAL.NOT_ELIGIBLE');

    expect(
      (
        await as(approver, 'POST', `/api/tool-requests/${request.id}/decisions`, {
          decision: 'approve',
        })
      ).statusCode,
    ).toBe(200);
    const filled = await as(ownersManager, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'approve',
    });
    expect(filled.statusCode).toBe(200);
    const body = filled.json<RequestBody>();
    expect(body.status).toBe('approved');
    expect(body.approvals.slots).toEqual(
      expect.arrayContaining([
        { slot: 'system-owner', approverId: ownersManager.id, onBehalfOfOwner: true },
        { slot: 'security-approver', approverId: approver.id, onBehalfOfOwner: false },
      ]),
    );
  });

  it('required rejection and edit reset', async () => {
    const requester = await t.createUser(['requester']);
    const [a1, a2] = await Promise.all([
      t.createUser(['security-approver']),
      t.createUser(['security-approver']),
    ]);
    const owner = await t.createUser(['system-owner']);
    const system = await createSystem({ criticality: 'critical', ownerId: owner.id });
    const request = await submitted(requester, system.id);

    expect(
      (await as(a1, 'POST', `/api/tool-requests/${request.id}/decisions`, { decision: 'approve' }))
        .statusCode,
    ).toBe(200);
    const inReview = await readRequest(request.id);
    const edited = await as(requester, 'PATCH', `/api/tool-requests/${request.id}`, {
      justification: 'Remote support for the service desk and the plant floor',
      version: inReview.version,
    });
    expect(edited.statusCode).toBe(200);
    expect(edited.json()).toMatchObject({ round: 2, status: 'submitted' });
    expect(edited.json().approvals.received).toBe(0);
    const [audit] = await superuserQuery<{
      before: { round: number; justification: string };
      after: { round: number; justification: string };
    }>(
      t.databaseUrl,
      `SELECT before, after FROM audit_events
        WHERE entity_id = $1 AND action = 'tool_request.updated.approvals_reset'`,
      [request.id],
    );
    expect(audit.before).toMatchObject({
      round: 1,
      justification: 'Remote support for the service desk',
    });
    expect(audit.after).toMatchObject({ round: 2 });

    const stale = await as(requester, 'PATCH', `/api/tool-requests/${request.id}`, {
      justification: 'Another change',
      version: inReview.version,
    });
    expect(stale.statusCode).toBe(409);

    const rejected = await as(owner, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'reject',
      comment: 'Our plant floor has its own tool',
    });
    expect(rejected.statusCode).toBe(200);
    expect(rejected.json().status).toBe('rejected');
    const late = await as(a2, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'approve',
    });
    expect(late.statusCode).toBe(409);
    expect(late.json().code).toBe('APPROVAL.ALREADY_FINAL');
    expect(
      (await t.request({ method: 'GET', url: `/api/systems/${system.id}/approval` })).json(),
    ).toMatchObject({ approved: false, status: 'never-approved' });
  });

  it('changes, resubmission and withdrawal', async () => {
    const requester = await t.createUser(['requester']);
    const approver = await t.createUser(['security-approver']);
    const system = await createSystem();
    const request = await submitted(requester, system.id);

    const changes = await as(approver, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'request-changes',
      comment: 'Attach the SOC 2 report',
    });
    expect(changes.json().status).toBe('changes_requested');
    const resubmitted = await as(requester, 'POST', `/api/tool-requests/${request.id}/submit`, {});
    expect(resubmitted.json()).toMatchObject({ status: 'submitted', round: 2 });
    // A change request without a comment leaves the requester guessing, so it is rejected.
    const silent = await as(approver, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'request-changes',
    });
    expect(silent.statusCode).toBe(400);
    expect(silent.json().details.fields[0].field).toBe('comment');
    // The approver decided in round 1 and may decide again in round 2.
    expect(
      (
        await as(approver, 'POST', `/api/tool-requests/${request.id}/decisions`, {
          decision: 'request-changes',
          comment: 'Name the patch cadence',
        })
      ).statusCode,
    ).toBe(200);

    const otherUser = await t.createUser(['requester']);
    expect(
      (await as(otherUser, 'POST', `/api/tool-requests/${request.id}/withdraw`, {})).statusCode,
    ).toBe(403);
    const withdrawn = await as(requester, 'POST', `/api/tool-requests/${request.id}/withdraw`, {});
    expect(withdrawn.json().status).toBe('withdrawn');

    // With the old request closed, a new one for the same system may start.
    const next = await as(requester, 'POST', '/api/tool-requests', {
      systemId: system.id,
      justification: 'Second attempt',
    });
    expect(next.statusCode).toBe(201);
    const duplicate = await as(requester, 'POST', '/api/tool-requests', {
      systemId: system.id,
      justification: 'Third attempt',
    });
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().code).toBe('APPROVAL.REQUEST_OPEN');
  });

  it('signing host on system host fails', async () => {
    const requester = await t.createUser(['requester']);
    const approver = await t.createUser(['security-approver']);
    const system = await createSystem({
      category: 'software-deployment',
      deploysSoftware: true,
      hosts: [{ hostname: 'pdq01.corp.example.com', address: '10.0.0.9' }],
    });
    const request = await submitted(requester, system.id, {
      signingHost: 'PDQ01.corp.example.com',
      signingHostRemoteAccess: 'Console only',
    });
    expect(request.evaluation.passing).toBe(false);
    expect(
      request.evaluation.items.find((i) => i.item === 'signing-certificates-isolated')?.problem,
    ).toBe('the signing host is one of the system hosts');

    const refused = await as(approver, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'approve',
    });
    expect(refused.statusCode).toBe(422);
    expect(refused.json().code).toBe('APPROVAL.EVALUATION_FAILED');

    const moved = await as(requester, 'PATCH', `/api/tool-requests/${request.id}`, {
      signingHost: 'sign01.vault.example.com',
      version: request.version,
    });
    expect(moved.json().evaluation.passing).toBe(true);
    const approved = await as(approver, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'approve',
    });
    expect(approved.statusCode).toBe(200);
    expect(approved.json().status).toBe('approved');
  });

  it('incomplete evaluation blocks submission', async () => {
    const requester = await t.createUser(['requester']);
    const system = await createSystem();
    const draft = await as(requester, 'POST', '/api/tool-requests', {
      systemId: system.id,
      justification: 'Remote support',
    });
    const submit = await as(requester, 'POST', `/api/tool-requests/${draft.json().id}/submit`, {});
    expect(submit.statusCode).toBe(422);
    expect(submit.json()).toMatchObject({
      code: 'APPROVAL.EVALUATION_INCOMPLETE',
      details: { items: expect.arrayContaining(['provider-assessment']) },
    });
  });

  it('submitted request keeps policy version', async () => {
    const requester = await t.createUser(['requester']);
    const system = await createSystem({ criticality: 'low' });
    const request = await submitted(requester, system.id);
    expect(request.policy.version).toBe(1);

    const v2 = await publishPolicy({ criticality: 'low', requiredApprovals: 3, requiredRoles: [] });
    expect(v2.version).toBe(2);
    const read = await readRequest(request.id);
    expect(read.policy).toMatchObject({ id: request.policy.id, version: 1 });
    expect(read.approvals.required).toBe(1);

    const history = await t.request({ method: 'GET', url: '/api/approval-policies?history=true' });
    const low = history
      .json()
      .filter(
        (p: { criticality: string; category: string | null }) =>
          p.criticality === 'low' && p.category === null,
      );
    expect(low.map((p: { version: number }) => p.version)).toEqual([2, 1]);
  });

  it('re-approval due and expiry at read time', async () => {
    const requester = await t.createUser(['requester']);
    const owner = await t.createUser(['system-owner']);
    const approver = await t.createUser(['security-approver']);
    const system = await createSystem({ ownerId: owner.id });
    const request = await submitted(requester, system.id);
    const approved = await as(approver, 'POST', `/api/tool-requests/${request.id}/decisions`, {
      decision: 'approve',
    });
    expect(approved.json().status).toBe('approved');
    const start = t.clock.now().getTime();

    // 340 days later the 30-day notice of a 365-day approval has begun; no job has run.
    t.clock.set(new Date(start + 340 * DAY));
    expect((await readRequest(request.id)).effectiveStatus).toBe('reapproval_due');
    const marked = await t.app.get(ApprovalDecisionsService).markReapprovalDue();
    expect(marked.marked).toBeGreaterThanOrEqual(1);
    expect((await readRequest(request.id)).status).toBe('reapproval_due');
    const notices = await superuserQuery<{ n: number }>(
      t.databaseUrl,
      `SELECT count(*)::int AS n FROM notifications n JOIN notification_events e ON e.id = n.event_id
        WHERE e.type = 'tool-request.reapproval-due' AND n.user_id = $1`,
      [owner.id],
    );
    expect(notices[0].n).toBe(1);
    expect((await t.app.get(ApprovalDecisionsService).markReapprovalDue()).marked).toBe(0);

    t.clock.set(new Date(start + 366 * DAY));
    expect((await readRequest(request.id)).effectiveStatus).toBe('expired');
    const status = await t.request({ method: 'GET', url: `/api/systems/${system.id}/approval` });
    expect(status.json()).toMatchObject({ approved: false, status: 'expired' });
    await expect(
      assertSystemApproved(t.app.get(DataSource).manager, system.id, t.clock.now()),
    ).rejects.toMatchObject({ code: 'APPROVAL.SYSTEM_NOT_APPROVED', status: 422 });
  });

  describe('evidence files', () => {
    it('evidence stored by SHA-256', async () => {
      const requester = await t.createUser(['requester']);
      const bytes = Buffer.from([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0x10, 0x80]);
      const upload = await as(requester, 'POST', '/api/evidence?fileName=soc2.pdf', undefined);
      expect(upload.statusCode).toBe(415);
      const stored = await t.requestAs(requester, {
        method: 'POST',
        url: '/api/evidence?fileName=soc2.pdf',
        headers: { 'content-type': 'application/pdf' },
        payload: bytes,
      });
      expect(stored.statusCode).toBe(201);
      const { createHash } = await import('node:crypto');
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      expect(stored.json()).toMatchObject({ sha256, sizeBytes: 8, mediaType: 'application/pdf' });

      const download = await t.request(
        { method: 'GET', url: `/api/evidence/${sha256}` },
        'auditor',
      );
      expect(download.statusCode).toBe(200);
      expect(download.rawPayload.equals(bytes)).toBe(true);
      expect(download.headers['content-disposition']).toBe(
        `attachment; filename="soc2.pdf"; filename*=UTF-8''soc2.pdf`,
      );

      const system = await createSystem();
      const draft = await as(requester, 'POST', '/api/tool-requests', {
        systemId: system.id,
        justification: 'Remote support',
      });
      const linked = await as(
        requester,
        'PUT',
        `/api/tool-requests/${draft.json().id}/evaluation/provider-assessment`,
        {
          answer: 'yes',
          evidenceSha256: sha256,
          details: YES_DETAILS['provider-assessment'],
        },
      );
      expect(linked.statusCode).toBe(200);
      const unknown = await as(
        requester,
        'PUT',
        `/api/tool-requests/${draft.json().id}/evaluation/admin-mfa`,
        {
          answer: 'yes',
          evidenceSha256: 'a'.repeat(64),
        },
      );
      expect(unknown.statusCode).toBe(400);
      expect(unknown.json().details.fields[0].field).toBe('evidenceSha256');
    });

    it('oversized evidence rejected unstored', async () => {
      const requester = await t.createUser(['requester']);
      const before = await superuserQuery<{ n: number }>(
        t.databaseUrl,
        `SELECT count(*)::int AS n FROM evidence_files`,
      );
      const tooLarge = await t.requestAs(requester, {
        method: 'POST',
        url: '/api/evidence',
        headers: { 'content-type': 'application/octet-stream' },
        payload: randomBytes(2049),
      });
      expect(tooLarge.statusCode).toBe(413);
      expect(tooLarge.json().code).toBe('EVIDENCE.TOO_LARGE');
      const after = await superuserQuery<{ n: number }>(
        t.databaseUrl,
        `SELECT count(*)::int AS n FROM evidence_files`,
      );
      expect(after[0].n).toBe(before[0].n);
      const atLimit = await t.requestAs(requester, {
        method: 'POST',
        url: '/api/evidence',
        headers: { 'content-type': 'application/octet-stream' },
        payload: randomBytes(2048),
      });
      expect(atLimit.statusCode).toBe(201);
    });
  });

  describe('hostile and invalid input', () => {
    it('bulk decision nested field errors', async () => {
      const approver = await t.createUser(['security-approver']);
      const response = await as(approver, 'POST', '/api/tool-requests/decisions', {
        items: [
          { requestId: 'not-a-uuid', decision: 'approve' },
          { requestId: randomUUIDv4(), decision: 'maybe', extra: 1 },
        ],
      });
      expect(response.statusCode).toBe(400);
      const fields = response.json().details.fields.map((f: { field: string }) => f.field);
      expect(fields).toEqual(
        expect.arrayContaining(['items.0.requestId', 'items.1.decision', 'items.1.extra']),
      );
    });

    it('decision body prototype keys rejected', async () => {
      const approver = await t.createUser(['security-approver']);
      for (const [key, named] of [
        ['constructor', 'constructor.prototype'],
        ['__proto__', '__proto__'],
      ]) {
        const response = await t.requestAs(approver, {
          method: 'POST',
          url: '/api/tool-requests/decisions',
          headers: { 'content-type': 'application/json' },
          payload: `{"items":[{"requestId":"${randomUUIDv4()}","decision":"approve"}],"${key}":{"prototype":{"isAdmin":true}}}`,
        });
        expect(response.statusCode).toBe(400);
        expect(response.json().details.fields[0].field).toBe(named);
        expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
      }
      const broken = await t.requestAs(approver, {
        method: 'POST',
        url: '/api/tool-requests/decisions',
        headers: { 'content-type': 'application/json' },
        payload: '{"items": [',
      });
      expect(broken.statusCode).toBe(400);
      expect(broken.json().message).toContain('not valid JSON');
    });

    it('yes without required details rejected', async () => {
      const requester = await t.createUser(['requester']);
      const system = await createSystem();
      const draft = await as(requester, 'POST', '/api/tool-requests', {
        systemId: system.id,
        justification: 'Remote support',
      });
      const bare = await as(
        requester,
        'PUT',
        `/api/tool-requests/${draft.json().id}/evaluation/supported-version`,
        { answer: 'yes', evidenceText: 'ok' },
      );
      expect(bare.statusCode).toBe(400);
      expect(bare.json().details.fields[0].field).toBe('details.patchCadence');
      const stored = await superuserQuery<{ n: number }>(
        t.databaseUrl,
        `SELECT count(*)::int AS n FROM evaluation_answers WHERE request_id = $1`,
        [draft.json().id],
      );
      expect(stored[0].n).toBe(0);
    });

    it('oversized and malformed bodies rejected', async () => {
      const requester = await t.createUser(['requester']);
      const manyKeys = Object.fromEntries(
        Array.from({ length: 25_000 }, (_, index) => [`k${index}`, 1]),
      );
      const flood = await as(requester, 'POST', '/api/tool-requests', manyKeys);
      expect(flood.statusCode).toBe(400);
      expect(flood.json().message).toContain('more than 20000 fields');
      expect(flood.json().details.fields).toHaveLength(1);

      const system = await createSystem();
      const surrogate = await t.requestAs(requester, {
        method: 'POST',
        url: '/api/tool-requests',
        headers: { 'content-type': 'application/json' },
        payload: `{"systemId":"${system.id}","justification":"a\\ud800b"}`,
      });
      expect(surrogate.statusCode).toBe(400);
      expect(surrogate.json().details.fields[0].field).toBe('justification');

      const twoNames = await t.requestAs(requester, {
        method: 'POST',
        url: '/api/evidence?fileName=a&fileName=b',
        headers: { 'content-type': 'text/plain' },
        payload: 'evidence',
      });
      expect(twoNames.statusCode).toBe(400);
      expect(twoNames.json().details.fields[0].field).toBe('fileName');
    });

    it('policy field validation', async () => {
      const response = await t.request({
        method: 'POST',
        url: '/api/approval-policies',
        payload: {
          criticality: 'low',
          requiredApprovals: 1,
          requiredRoles: ['security-approver', 'system-owner'],
          validityDays: 30,
          reapprovalNoticeDays: 40,
          mandatoryItems: ['not-an-item'],
          defaultMaxAdmins: 2,
        },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().details.fields.map((f: { field: string }) => f.field)).toContain(
        'mandatoryItems',
      );
      const tooManyRoles = await t.request({
        method: 'POST',
        url: '/api/approval-policies',
        payload: {
          criticality: 'low',
          requiredApprovals: 1,
          requiredRoles: ['security-approver', 'system-owner'],
          validityDays: 30,
          reapprovalNoticeDays: 5,
          mandatoryItems: [],
          defaultMaxAdmins: 2,
        },
      });
      expect(tooManyRoles.statusCode).toBe(400);
      expect(tooManyRoles.json().details.fields[0].field).toBe('requiredRoles');
    });
  });
});

function randomUUIDv4(): string {
  return `${randomBytes(4).toString('hex')}-${randomBytes(2).toString('hex')}-4${randomBytes(2).toString('hex').slice(1)}-a${randomBytes(2).toString('hex').slice(1)}-${randomBytes(6).toString('hex')}`;
}
