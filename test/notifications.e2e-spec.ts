import { readFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';

import { SMTPServer } from 'smtp-server';

import { bundledKevFile } from '../src/common/project-root';
import { DeliveryService } from '../src/notifications/delivery.service';
import { KevDueDigest } from '../src/notifications/kev-due-digest';
import {
  signWebhook,
  verifyWebhook,
  WEBHOOK_HEADERS,
} from '../src/notifications/webhook-signature';
import { startTestApp, TestApp, testKeyEnv } from './support/app';
import { superuserQuery } from './support/database';
import { eventually } from './support/http-fixture';
import { freePort, ServiceProcess } from './support/service-process';
import { TEST_REDIS_URL } from './support/env';

interface Mail {
  to: string;
  raw: string;
}

/** Starts a real SMTP server (smtp-server package) that keeps every message it accepts. */
async function startSmtp(
  port: number,
  mails: Mail[],
  hold?: () => Promise<boolean>,
): Promise<SMTPServer> {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      stream.on('end', () => {
        const finish = (accepted: boolean): void => {
          if (!accepted) return callback(new Error('connection dropped'));
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), raw });
          callback();
        };
        if (hold) void hold().then(finish);
        else finish(true);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

async function stopSmtp(server: SMTPServer): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Creates a system owned by `ownerId` and uploads the bundled KEV catalog so it has findings. */
async function ownedSystemWithFindings(t: TestApp, ownerId: string, name: string): Promise<void> {
  const provider = await t.request({
    method: 'POST',
    url: '/api/providers',
    payload: { name: 'ConnectWise' },
  });
  const providerId =
    provider.statusCode === 201
      ? provider.json().id
      : (await t.request({ method: 'GET', url: '/api/providers?q=ConnectWise' })).json().items[0]
          .id;
  const system = await t.request({
    method: 'POST',
    url: '/api/systems',
    payload: {
      providerId,
      name,
      product: 'ScreenConnect',
      category: 'remote-support',
      criticality: 'critical',
      ownerId,
    },
  });
  expect(system.statusCode).toBe(201);
}

async function uploadCatalog(t: TestApp): Promise<void> {
  const response = await t.request({
    method: 'POST',
    url: '/api/kev/imports/upload',
    headers: { 'content-type': 'application/octet-stream' },
    payload: readFileSync(bundledKevFile(), 'utf8'),
  });
  expect(response.statusCode).toBe(201);
}

describe('webhook signature', () => {
  it('signs the bytes and rejects a changed timestamp or body', () => {
    const body = Buffer.from(
      JSON.stringify({ name: 'Jürgen Ødegård', url: 'https://x.example/a/b', n: { m: [1] } }),
    );
    const timestamp = 1_800_000_000;
    const signature = signWebhook('secret', timestamp, body);
    expect(verifyWebhook('secret', body, String(timestamp), signature, timestamp)).toBe(true);
    expect(verifyWebhook('secret', body, String(timestamp + 1), signature, timestamp)).toBe(false);
    expect(
      verifyWebhook(
        'secret',
        Buffer.concat([body, Buffer.from(' ')]),
        String(timestamp),
        signature,
        timestamp,
      ),
    ).toBe(false);
    expect(verifyWebhook('other', body, String(timestamp), signature, timestamp)).toBe(false);
    expect(verifyWebhook('secret', body, String(timestamp), signature, timestamp + 301)).toBe(
      false,
    );
    expect(verifyWebhook('secret', body, 'soon', signature, timestamp)).toBe(false);
  });
});

describe('notifications', () => {
  let t: TestApp;
  let smtp: SMTPServer;
  const mails: Mail[] = [];

  beforeAll(async () => {
    const smtpPort = await freePort();
    smtp = await startSmtp(smtpPort, mails);
    t = await startTestApp({
      env: {
        SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
        NOTIFY_RETRY_BASE_MS: '50',
        NOTIFY_MAX_ATTEMPTS: '3',
      },
    });
    t.clock.set('2026-06-01T06:00:00Z');
    await uploadCatalog(t);
  });

  afterAll(async () => {
    await t.close();
    await stopSmtp(smtp);
  });

  it('mails one digest per owner and day, with in-app copies', async () => {
    const owner = t.users['system-owner'];
    await ownedSystemWithFindings(t, owner.id, 'Digest desk');

    const first = await t.app.get(KevDueDigest).sendDigests();
    expect(first.published).toBe(1);
    const mail = await eventually(async () => mails.find((m) => m.to === owner.email));
    expect(mail.raw).toContain('Subject: 2 vulnerability finding(s)');
    expect(mail.raw).toContain('CVE-2024-1709 on Digest desk');
    expect(mail.raw).toContain('Content-Type: text/html');

    const again = await t.app.get(KevDueDigest).sendDigests();
    expect(again.published).toBe(0);

    const unread = await t.request(
      { method: 'GET', url: '/api/notifications/unread-count' },
      'system-owner',
    );
    expect(unread.json()).toEqual({ unread: 1 });
    const list = await t.request({ method: 'GET', url: '/api/notifications' }, 'system-owner');
    const [notification] = list.json().items;
    expect(notification.type).toBe('kev.findings_due');
    const read = await t.request(
      { method: 'POST', url: `/api/notifications/${notification.id}/read` },
      'system-owner',
    );
    expect(read.statusCode).toBe(204);
    const after = await t.request(
      { method: 'GET', url: '/api/notifications/unread-count' },
      'system-owner',
    );
    expect(after.json()).toEqual({ unread: 0 });

    const foreign = await t.request(
      { method: 'POST', url: `/api/notifications/${notification.id}/read` },
      'auditor',
    );
    expect(foreign.statusCode).toBe(404);
    expect(mails.filter((m) => m.to === owner.email)).toHaveLength(1);
  });

  it('delivers a webhook once after two failures, signed per attempt', async () => {
    const received: { status: number; eventId: string; timestamp: string; valid: boolean }[] = [];
    let secret = '';
    const server: Server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks);
        const timestamp = String(request.headers[WEBHOOK_HEADERS.timestamp]);
        const valid = verifyWebhook(
          secret,
          body,
          timestamp,
          String(request.headers[WEBHOOK_HEADERS.signature]),
          Number(timestamp),
        );
        const status = received.length < 2 ? 500 : 200;
        received.push({
          status,
          eventId: String(request.headers[WEBHOOK_HEADERS.eventId]),
          timestamp,
          valid,
        });
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const hook = await t.request({
        method: 'POST',
        url: '/api/notifications/webhooks',
        payload: {
          name: 'SIEM',
          url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
          eventTypes: ['kev.findings_due'],
        },
      });
      expect(hook.statusCode).toBe(201);
      secret = hook.json().secret;
      const [stored] = await superuserQuery<{ secret_ciphertext: Buffer }>(
        t.databaseUrl,
        'SELECT secret_ciphertext FROM webhooks',
      );
      expect(stored.secret_ciphertext.toString('latin1')).not.toContain(secret);

      const owner = t.users['security-approver'];
      await ownedSystemWithFindings(t, owner.id, 'Webhook desk');
      await t.app.get(KevDueDigest).sendDigests();

      // Attempts 2 and 3 wait 50 and 100 ms of real time; each carries a later clock time.
      for (let step = 0; step < 3; step += 1) {
        await eventually(async () => (received.length > step ? true : undefined));
        t.clock.advance(1000);
      }
      await eventually(async () => {
        const [row] = await superuserQuery<{ status: string; attempts: number }>(
          t.databaseUrl,
          `SELECT status, attempts FROM deliveries WHERE channel = 'webhook'`,
        );
        return row?.status === 'delivered' ? row : undefined;
      }).then((row) => expect(row.attempts).toBe(3));

      expect(received.map((r) => r.status)).toEqual([500, 500, 200]);
      expect(received.every((r) => r.valid)).toBe(true);
      expect(new Set(received.map((r) => r.eventId)).size).toBe(1);
      expect(new Set(received.map((r) => r.timestamp)).size).toBe(3);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('dead-letters a failing delivery, then retries', async () => {
    const [row] = await superuserQuery<{ id: string }>(
      t.databaseUrl,
      `SELECT id FROM webhooks WHERE name = 'SIEM'`,
    );
    // The endpoint above is closed, so every attempt fails.
    const owner = t.users.manager;
    await ownedSystemWithFindings(t, owner.id, 'Dead letter desk');
    await t.app.get(KevDueDigest).sendDigests();
    const dead = await eventually(async () => {
      // Retries fall due by the test clock: move it past each backoff and run the periodic sweep.
      t.clock.advance(1000);
      await t.app.get(DeliveryService).sweep();
      const page = (
        await t.request({ method: 'GET', url: '/api/notifications/deliveries?status=dead' })
      ).json();
      return page.items.find((d: { recipient: string }) => d.recipient === row.id);
    });
    expect(dead).toMatchObject({ attempts: 3, channel: 'webhook' });
    expect(dead.lastError).toMatch(/fetch failed|ECONNREFUSED/);

    const retried = await t.request({
      method: 'POST',
      url: `/api/notifications/deliveries/${dead.id}/retry`,
    });
    expect(retried.statusCode).toBe(202);
    const again = await t.request({
      method: 'POST',
      url: `/api/notifications/deliveries/${dead.id}/retry`,
    });
    expect([202, 409]).toContain(again.statusCode);
  });

  it('routes an event type only to the channels the organisation chose', async () => {
    const route = await t.request({
      method: 'PUT',
      url: '/api/notifications/routes/kev.findings_due',
      payload: { channels: ['in-app'] },
    });
    expect(route.statusCode).toBe(200);
    const unknown = await t.request({
      method: 'PUT',
      url: '/api/notifications/routes/nothing.here',
      payload: { channels: ['in-app'] },
    });
    expect(unknown.statusCode).toBe(400);

    const owner = await t.request({
      method: 'POST',
      url: '/api/users',
      payload: {
        email: 'routed-owner@test.example',
        name: 'Routed owner',
        roles: ['system-owner'],
      },
    });
    await ownedSystemWithFindings(t, owner.json().id, 'Routed desk');
    await t.app.get(KevDueDigest).sendDigests();

    const deliveries = await superuserQuery(
      t.databaseUrl,
      `SELECT 1 FROM deliveries WHERE recipient = $1`,
      [owner.json().id],
    );
    expect(deliveries).toHaveLength(0);
    const inApp = await superuserQuery(
      t.databaseUrl,
      `SELECT 1 FROM notifications WHERE user_id = $1`,
      [owner.json().id],
    );
    expect(inApp).toHaveLength(1);

    await t.request({
      method: 'PUT',
      url: '/api/notifications/routes/kev.findings_due',
      payload: { channels: ['in-app', 'email', 'webhook'] },
    });
  });

  it('sends nothing to a deactivated user', async () => {
    const user = await t.request({
      method: 'POST',
      url: '/api/users',
      payload: { email: 'gone-owner@test.example', name: 'Gone owner', roles: ['system-owner'] },
    });
    await ownedSystemWithFindings(t, user.json().id, 'Gone desk');
    await t.request({
      method: 'POST',
      url: `/api/users/${user.json().id}/deactivate`,
      payload: { version: 1, reason: 'Left' },
    });
    await t.app.get(KevDueDigest).sendDigests();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(mails.filter((m) => m.to === 'gone-owner@test.example')).toHaveLength(0);
  });

  it('holds e-mail during quiet hours and sends it after', async () => {
    const owner = t.users.requester;
    await t.request({
      method: 'PATCH',
      url: `/api/users/${owner.id}`,
      payload: { version: 1, timeZone: 'Europe/Berlin', roles: ['requester', 'system-owner'] },
    });
    const preferences = await t.request(
      {
        method: 'PUT',
        url: '/api/notifications/preferences',
        payload: { channels: ['email'], quietStart: '22:00', quietEnd: '07:00' },
      },
      'requester',
    );
    expect(preferences.statusCode).toBe(200);
    await ownedSystemWithFindings(t, owner.id, 'Quiet desk');

    // 23:30 in Berlin (UTC+2 in June).
    t.clock.set('2026-06-02T21:30:00Z');
    await t.app.get(KevDueDigest).sendDigests();
    const deferred = await eventually(async () => {
      const [row] = await superuserQuery<{ next_attempt_at: Date; status: string }>(
        t.databaseUrl,
        `SELECT d.next_attempt_at, d.status FROM deliveries d WHERE d.recipient = $1`,
        [owner.id],
      );
      return row && row.next_attempt_at.toISOString() === '2026-06-03T05:00:00.000Z'
        ? row
        : undefined;
    });
    expect(deferred.status).toBe('pending');
    expect(mails.filter((m) => m.to === owner.email)).toHaveLength(0);

    t.clock.set('2026-06-03T05:00:30Z');
    await t.app.get(DeliveryService).sweep();
    await eventually(async () => mails.find((m) => m.to === owner.email));
    expect(mails.filter((m) => m.to === owner.email)).toHaveLength(1);
  });
});

describe('delivery when the worker is killed', () => {
  it('sends once after a killed worker and a restart', async () => {
    const smtpPort = await freePort();
    const mails: Mail[] = [];
    let release: (accepted: boolean) => void = () => undefined;
    let firstMessageHeld = false;
    const smtp = await startSmtp(smtpPort, mails, () => {
      if (firstMessageHeld) return Promise.resolve(true);
      firstMessageHeld = true;
      return new Promise<boolean>((resolve) => (release = resolve));
    });
    const keys = testKeyEnv();
    const env = { SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, PROCESS_ROLE: 'api', ...keys };
    const api = await startTestApp({ env });
    const worker = new ServiceProcess({
      DATABASE_URL: api.databaseUrl,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: api.queuePrefix,
      PROCESS_ROLE: 'worker',
      SMTP_URL: env.SMTP_URL,
      ...keys,
    });
    try {
      api.clock.set(new Date());
      await uploadCatalog(api);
      const owner = api.users['system-owner'];
      await ownedSystemWithFindings(api, owner.id, 'Crash desk');
      await worker.waitForLog(/Running as worker only/);

      await api.app.get(KevDueDigest).sendDigests();
      await eventually(async () => (firstMessageHeld ? true : undefined));
      worker.child.kill('SIGKILL');
      await worker.exited;
      release(false);

      const [claimed] = await superuserQuery<{ status: string; attempts: number }>(
        api.databaseUrl,
        `SELECT status, attempts FROM deliveries WHERE recipient = $1`,
        [owner.id],
      );
      expect(claimed).toEqual({ status: 'sending', attempts: 1 });

      // A new instance with a worker finds the expired lease and sends again.
      const restarted = await startTestApp({
        databaseUrl: api.databaseUrl,
        env: { ...env, PROCESS_ROLE: 'both', QUEUE_PREFIX: api.queuePrefix },
      });
      try {
        restarted.clock.set(new Date(Date.now() + 10 * 60_000));
        await restarted.app.get(DeliveryService).sweep();
        await eventually(async () => {
          const [row] = await superuserQuery<{ status: string; attempts: number }>(
            api.databaseUrl,
            `SELECT status, attempts FROM deliveries WHERE recipient = $1`,
            [owner.id],
          );
          return row?.status === 'delivered' ? row : undefined;
        }).then((row) => expect(row.attempts).toBe(2));
        expect(mails.filter((mail) => mail.to === owner.email)).toHaveLength(1);
      } finally {
        await restarted.close();
      }
    } finally {
      await worker.stop();
      await api.close();
      await stopSmtp(smtp);
    }
  });
});
