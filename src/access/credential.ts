import { createHmac } from 'node:crypto';

/**
 * Computes the keyed fingerprint of a secret or key identifier: HMAC-SHA256 under the server's
 * fingerprint key. Equal secrets give equal fingerprints, and without the key a fingerprint
 * cannot be tested against guessed secrets.
 */
export function credentialFingerprint(key: Buffer, secret: string): Buffer {
  return createHmac('sha256', key).update(secret, 'utf8').digest();
}
