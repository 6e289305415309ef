import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { MIGRATIONS } from '../migrations';
import type { Readiness } from '../src/health/health.controller';
import { testKeyEnv } from './support/app';
import { createTestDatabase, superuserQuery } from './support/database';
import { TEST_REDIS_URL } from './support/env';
import { freePort, ServiceProcess } from './support/service-process';

jest.setTimeout(120_000);

const CLI = join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');

const ADMIN = {
  BOOTSTRAP_ADMIN_EMAIL: 'root@test.example',
  BOOTSTRAP_ADMIN_PASSWORD: 'bootstrap-password-1',
};

/** Signs in as the bootstrap admin and returns the Authorization header value. */
async function adminAuthorization(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/api/auth/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      email: ADMIN.BOOTSTRAP_ADMIN_EMAIL,
      password: ADMIN.BOOTSTRAP_ADMIN_PASSWORD,
    }),
  });
  expect(response.status).toBe(200);
  const { accessToken } = (await response.json()) as { accessToken: string };
  return `Bearer ${accessToken}`;
}

describe('service start-up', () => {
  const started: ServiceProcess[] = [];

  function start(env: Record<string, string | undefined>): ServiceProcess {
    const service = new ServiceProcess(env);
    started.push(service);
    return service;
  }

  afterEach(async () => {
    await Promise.all(started.splice(0).map((service) => service.stop()));
  });

  it('exits with a message naming a bad PORT', async () => {
    const service = start({
      PORT: 'abc',
      DATABASE_URL: 'postgres://x@127.0.0.1/x',
      ...testKeyEnv(),
      ...ADMIN,
    });
    expect(await service.exited).toBe(1);
    expect(service.log).toContain('PORT must be a whole number from 0 to 65535 (got "abc")');
    expect(service.log).not.toMatch(/\n\s+at /);
  });

  it('lists every bad variable at once', async () => {
    const service = start({
      PORT: '70000',
      PROCESS_ROLE: 'everything',
      DATABASE_URL: 'mysql://db/x',
    });
    expect(await service.exited).toBe(1);
    expect(service.log).toContain('PORT must be a whole number');
    expect(service.log).toContain('PROCESS_ROLE must be one of api, worker, both');
    expect(service.log).toContain('DATABASE_URL must use postgres: or postgresql:');
  });

  it('exits with a message when DATABASE_URL cannot be reached', async () => {
    const port = await freePort();
    const service = start({
      DATABASE_URL: `postgres://gov:secret-pw@127.0.0.1:${port}/governance`,
      PORT: String(await freePort()),
      ...testKeyEnv(),
      ...ADMIN,
    });
    expect(await service.exited).toBe(1);
    expect(service.log).toContain(`Cannot connect to PostgreSQL at 127.0.0.1:${port}/governance`);
    expect(service.log).not.toContain('secret-pw');
  });

  it('refuses to start on a shared database without keys', async () => {
    const service = start({
      DATABASE_URL: await createTestDatabase(),
      PORT: String(await freePort()),
    });
    expect(await service.exited).toBe(1);
    expect(service.log).toContain('FINGERPRINT_KEY is required when DATABASE_URL is set');
  });

  it('serves the catalog while Redis is down and reports it degraded', async () => {
    const port = await freePort();
    const service = start({
      DATABASE_URL: await createTestDatabase(),
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      PORT: String(port),
      ...testKeyEnv(),
      ...ADMIN,
    });
    await service.waitForStatus(`http://127.0.0.1:${port}/health/ready`, 200);

    const ready = (await (
      await fetch(`http://127.0.0.1:${port}/health/ready`)
    ).json()) as Readiness;
    expect(ready.status).toBe('degraded');
    expect(ready.checks.redis.state).toBe('down');
    expect(ready.checks.postgres.state).toBe('up');

    const authorization = await adminAuthorization(port);
    const created = await fetch(`http://127.0.0.1:${port}/api/providers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify({ name: 'TeamViewer' }),
    });
    expect(created.status).toBe(201);
    const list = await fetch(`http://127.0.0.1:${port}/api/systems`, {
      headers: { authorization },
    });
    expect(list.status).toBe(200);
  });

  it('reports 503 while migrations are pending', async () => {
    const port = await freePort();
    const service = start({
      DATABASE_URL: await createTestDatabase({ migrated: false }),
      REDIS_URL: TEST_REDIS_URL,
      PORT: String(port),
      ...testKeyEnv(),
      ...ADMIN,
    });
    await service.waitForStatus(`http://127.0.0.1:${port}/health/live`, 200);
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as Readiness).checks.migrations.state).toBe('down');
  });

  it('runs migrations once when two instances start together', async () => {
    const databaseUrl = await createTestDatabase({ migrated: false });
    const keys = testKeyEnv();
    const ports = [await freePort(), await freePort()];
    const services = ports.map((port) =>
      start({
        DATABASE_URL: databaseUrl,
        MIGRATIONS_RUN: 'true',
        REDIS_URL: TEST_REDIS_URL,
        PORT: String(port),
        ...keys,
        ...ADMIN,
      }),
    );
    await Promise.all(
      ports.map((port, index) =>
        services[index].waitForStatus(`http://127.0.0.1:${port}/health/ready`, 200),
      ),
    );

    const applied = services.filter((service) => service.log.includes('Applied migrations'));
    expect(applied).toHaveLength(1);
    const rows = await superuserQuery<{ count: string }>(
      databaseUrl,
      'SELECT count(*) FROM schema_migrations',
    );
    expect(Number(rows[0].count)).toBe(MIGRATIONS.length);

    for (const port of ports) {
      const response = await fetch(`http://127.0.0.1:${port}/api/providers`, {
        headers: { authorization: await adminAuthorization(port) },
      });
      expect(response.status).toBe(200);
    }
    const [{ count: admins }] = await superuserQuery<{ count: string }>(
      databaseUrl,
      'SELECT count(*) FROM users',
    );
    expect(Number(admins)).toBe(1);
  });

  it('logs JSON with the request id and redacts credentials', async () => {
    const port = await freePort();
    const service = start({
      DATABASE_URL: await createTestDatabase(),
      REDIS_URL: TEST_REDIS_URL,
      PORT: String(port),
      ...testKeyEnv(),
      ...ADMIN,
    });
    await service.waitForStatus(`http://127.0.0.1:${port}/health/live`, 200);

    const response = await fetch(`http://127.0.0.1:${port}/api/systems`, {
      headers: { authorization: 'Bearer top-secret-token', 'x-request-id': 'trace-0001-abcd' },
    });
    expect(response.headers.get('x-request-id')).toBe('trace-0001-abcd');
    await service.waitForLog(/trace-0001-abcd/);

    const lines = service.log.split('\n').filter((line) => line.includes('trace-0001-abcd'));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(service.log).toContain('[Redacted]');
    expect(service.log).not.toContain('top-secret-token');
  });

  it('finishes an in-flight request on SIGTERM, then exits 0', async () => {
    const port = await freePort();
    const service = start({
      DATABASE_URL: await createTestDatabase(),
      REDIS_URL: TEST_REDIS_URL,
      PORT: String(port),
      ...testKeyEnv(),
      ...ADMIN,
    });
    await service.waitForStatus(`http://127.0.0.1:${port}/health/live`, 200);

    const authorization = await adminAuthorization(port);
    const body = JSON.stringify({ name: 'In-flight provider' });
    const responded = new Promise<number>((resolve, reject) => {
      const request = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/api/providers',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            authorization,
          },
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      request.on('error', reject);
      // Half the body now, the rest after the shutdown signal has been sent.
      request.write(body.slice(0, 10));
      setTimeout(() => {
        service.child.kill('SIGTERM');
        setTimeout(() => request.end(body.slice(10)), 300);
      }, 200);
    });

    expect(await responded).toBe(201);
    expect(await service.exited).toBe(0);
  });

  it('opens no HTTP port in the worker role', async () => {
    const port = await freePort();
    const service = start({
      DATABASE_URL: await createTestDatabase(),
      REDIS_URL: TEST_REDIS_URL,
      PORT: String(port),
      PROCESS_ROLE: 'worker',
      ...testKeyEnv(),
      ...ADMIN,
    });
    await service.waitForLog(/Running as worker only/);
    await expect(fetch(`http://127.0.0.1:${port}/health/live`)).rejects.toThrow();
  });

  it('starts the embedded PostgreSQL with no DATABASE_URL and keeps its keys', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gov-embedded-'));
    try {
      const port = await freePort();
      const env = {
        DATA_DIR: dataDir,
        EMBEDDED_PG_PORT: String(await freePort()),
        REDIS_URL: TEST_REDIS_URL,
        PORT: String(port),
      };
      const first = start(env);
      await first.waitForStatus(`http://127.0.0.1:${port}/health/ready`, 200, 90_000);
      const keyFile = join(dataDir, 'keys', 'fingerprint_key.key');
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const keyTime = statSync(keyFile).mtimeMs;
      expect(await first.stop()).toBe(0);

      const second = start(env);
      await second.waitForStatus(`http://127.0.0.1:${port}/health/ready`, 200, 90_000);
      expect(statSync(keyFile).mtimeMs).toBe(keyTime);
      expect(second.log).toContain('Schema is up to date');
    } finally {
      await Promise.all(started.splice(0).map((service) => service.stop()));
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('creates a platform admin from the operator command', async () => {
    const databaseUrl = await createTestDatabase();
    const cli = spawn(
      process.execPath,
      [CLI, 'create-admin', '--email', 'ops@test.example', '--name', 'Ops'],
      {
        env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent', ...testKeyEnv() },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let output = '';
    cli.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    cli.stdin.end('cli-password-12345\n');
    const code = await new Promise<number | null>((resolve) => cli.once('exit', resolve));

    expect(code).toBe(0);
    expect(output).toContain('Created platform admin ops@test.example');
    const roles = await superuserQuery<{ role: string }>(
      databaseUrl,
      `SELECT r.role FROM user_roles r JOIN users u ON u.id = r.user_id WHERE u.email = 'ops@test.example'`,
    );
    expect(roles).toEqual([{ role: 'platform-admin' }]);
    expect(output).not.toContain('cli-password-12345');
  });
});
