import { Injectable, NestMiddleware } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';

import { runWithContext } from './request-context';

/** Puts the request id and client address in the async context for the audit trail and logs. */
@Injectable()
export class ContextMiddleware implements NestMiddleware {
  use(
    request: IncomingMessage & { id?: string },
    response: ServerResponse,
    next: () => void,
  ): void {
    const requestId = String(request.id ?? '');
    response.setHeader('x-request-id', requestId);
    // TODO: the actor is "anonymous" until sign-in exists.
    runWithContext(
      {
        requestId,
        clientAddress: request.socket.remoteAddress,
        actor: 'anonymous',
        channel: 'api',
      },
      next,
    );
  }
}
