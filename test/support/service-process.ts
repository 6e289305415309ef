import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

const MAIN = join(__dirname, '..', '..', 'dist', 'src', 'main.js');

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A service started from the build output as an operator would start it. */
export class ServiceProcess {
  readonly child: ChildProcess;
  private output = '';
  readonly exited: Promise<number | null>;

  constructor(env: Record<string, string | undefined>) {
    const base: Record<string, string | undefined> = { ...process.env };
    for (const name of [
      'DATABASE_URL',
      'REDIS_URL',
      'DATA_DIR',
      'MIGRATIONS_RUN',
      'NODE_OPTIONS',
    ]) {
      delete base[name];
    }
    this.child = spawn(process.execPath, [MAIN], {
      env: { ...base, LOG_LEVEL: 'info', SEED_DEMO: 'false', MFA_REQUIRED_ROLES: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get log(): string {
    return this.output;
  }

  /** Polls a URL until it returns the status, the process exits, or the time runs out. */
  async waitForStatus(url: string, status: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (Date.now() < deadline && !exited) {
      try {
        const response = await fetch(url);
        if (response.status === status) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${url} did not return ${status} (exited: ${exited}); output:\n${this.output}`);
  }

  async waitForLog(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (pattern.test(this.output)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`Log never matched ${String(pattern)}; output:\n${this.output}`);
  }

  /** Sends SIGTERM and waits for the exit code; kills after the timeout. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
