import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

/** Local HTTP server that returns what a test sets per path and records every request path. */
export class HttpFixture {
  private readonly server: Server;
  readonly requests: string[] = [];
  private readonly routes = new Map<string, (response: ServerResponse) => void>();

  constructor() {
    this.server = createServer((request: IncomingMessage, response: ServerResponse) => {
      this.requests.push(request.url ?? '');
      const route = this.routes.get(request.url ?? '');
      if (route) {
        route(response);
      } else {
        response.writeHead(404).end('not found');
      }
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** Sets a handler of the test's own for a path, for slow or failing responses. */
  route(path: string, handler: (response: ServerResponse) => void | Promise<void>): void {
    this.routes.set(path, (response) => void handler(response));
  }

  serve(path: string, body: string, status = 200): void {
    this.routes.set(path, (response) =>
      response.writeHead(status, { 'content-type': 'application/json' }).end(body),
    );
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Polls until the check returns a value other than undefined, or fails after the timeout. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Condition not met within ${timeoutMs} ms`);
}
