import { createHmac, timingSafeEqual } from 'node:crypto';

/** Header names of a webhook request. */
export const WEBHOOK_HEADERS = {
  eventId: 'x-governance-event-id',
  timestamp: 'x-governance-timestamp',
  signature: 'x-governance-signature',
} as const;

/** Signs the exact body bytes with the timestamp: hex HMAC-SHA256 over "<timestamp>.<body>", as "v1=<hex>". */
export function signWebhook(secret: string, timestamp: number, body: Buffer): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  return `v1=${mac}`;
}

/**
 * Verifies a received webhook: the receiver passes the raw body bytes as received, the two headers
 * and its own clock. Rejects a timestamp outside the window (replays) and compares in constant time.
 */
export function verifyWebhook(
  secret: string,
  rawBody: Buffer,
  timestampHeader: string | undefined,
  signatureHeader: string | undefined,
  nowSeconds: number = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): boolean {
  if (!timestampHeader || !signatureHeader || !/^\d{1,12}$/.test(timestampHeader)) return false;
  const timestamp = Number(timestampHeader);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, rawBody));
  const received = Buffer.from(signatureHeader);
  return expected.length === received.length && timingSafeEqual(expected, received);
}
