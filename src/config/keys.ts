import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { ConfigurationError, Settings } from './settings';

/** Server-side keys: HMAC key for credential fingerprints, AES-256-GCM key for stored secrets, Ed25519 seed for evidence signing. */
export interface Keys {
  fingerprintKey: Buffer;
  secretsKey: Buffer;
  evidenceSigningKey: Buffer;
}

const KEY_VARIABLES = {
  fingerprintKey: 'FINGERPRINT_KEY',
  secretsKey: 'SECRETS_KEY',
  evidenceSigningKey: 'EVIDENCE_SIGNING_KEY',
} as const;

type KeyName = keyof typeof KEY_VARIABLES;

/**
 * Resolves every key from the environment. On the embedded default a missing key is generated once
 * into DATA_DIR/keys (mode 0600) and reused. With DATABASE_URL set a missing key stops start-up,
 * because instances sharing one database must agree on their keys.
 */
export function resolveKeys(settings: Settings): Keys {
  const names = Object.keys(KEY_VARIABLES) as KeyName[];
  const missing = names.filter((name) => settings.keys[name] === undefined);

  if (missing.length > 0 && settings.databaseUrl !== undefined) {
    throw new ConfigurationError(
      missing.map(
        (name) =>
          `${KEY_VARIABLES[name]} is required when DATABASE_URL is set (32 random bytes in base64, e.g. from "openssl rand -base64 32")`,
      ),
    );
  }

  const keyDir = join(settings.dataDir, 'keys');
  const resolved = {} as Keys;
  for (const name of names) {
    const fromEnvironment = settings.keys[name];
    resolved[name] =
      fromEnvironment !== undefined
        ? Buffer.from(fromEnvironment, 'base64')
        : readOrCreateKey(keyDir, name);
  }
  return resolved;
}

/**
 * Creates DATA_DIR readable by others (the embedded PostgreSQL runs as another user and must reach
 * DATA_DIR/pg) and the key folder below it for the owner only.
 */
export function ensureKeyDir(keyDir: string): void {
  mkdirSync(dirname(keyDir), { recursive: true, mode: 0o755 });
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
}

function readOrCreateKey(keyDir: string, name: KeyName): Buffer {
  const file = join(keyDir, `${KEY_VARIABLES[name].toLowerCase()}.key`);
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) {
      throw new ConfigurationError([
        `${file} must hold 32 bytes in base64; restore it from backup`,
      ]);
    }
    return key;
  }
  ensureKeyDir(keyDir);
  const key = randomBytes(32);
  // The "wx" flag fails if another process created the file first, so two starters never disagree.
  writeFileSync(file, key.toString('base64'), { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return key;
}
