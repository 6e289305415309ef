import type { AddressInfo } from 'node:net';

/** An HTTP server started by a benchmark on 127.0.0.1 and stopped by it. */
export interface RunningServer {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Request headers every call needs, such as the service's Authorization header. */
  headers: Record<string, string>;
  close(): Promise<void>;
}

export function baseUrl(address: string | AddressInfo | null): string {
  if (address === null || typeof address === 'string') {
    throw new Error(`The listening server has no TCP address (got ${String(address)})`);
  }
  return `http://127.0.0.1:${address.port}`;
}
