import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QueryFailedError } from 'typeorm';

import { DomainError, ErrorBody } from './errors';

const CODES_BY_STATUS: Record<number, string> = {
  400: 'REQUEST.INVALID',
  401: 'AUTH.REQUIRED',
  403: 'AUTH.FORBIDDEN',
  404: 'ROUTE.NOT_FOUND',
  405: 'ROUTE.METHOD_NOT_ALLOWED',
  409: 'STATE.CONFLICT',
  413: 'REQUEST.TOO_LARGE',
  415: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  422: 'RULE.VIOLATED',
  429: 'REQUEST.RATE_LIMITED',
};

/** PostgreSQL error codes caused by input the application let through, mapped to client errors. */
const POSTGRES_CLIENT_ERRORS: Record<string, { status: number; code: string; message: string }> = {
  '23505': {
    status: 409,
    code: 'STATE.DUPLICATE',
    message: 'A record with the same unique value already exists',
  },
  '23503': {
    status: 409,
    code: 'STATE.REFERENCE_MISSING',
    message: 'A referenced record does not exist',
  },
  '22P02': { status: 400, code: 'REQUEST.INVALID', message: 'A value has the wrong format' },
  '22001': { status: 400, code: 'REQUEST.INVALID', message: 'A value is too long' },
  '22003': { status: 400, code: 'REQUEST.INVALID', message: 'A number is out of range' },
};

const logger = new Logger('ErrorFilter');

/** Maps any thrown value to the single error body shape; hides details of unexpected errors. */
export function toErrorBody(exception: unknown, requestId: string | undefined): ErrorBody {
  if (exception instanceof DomainError) {
    return withDetails(
      exception.status,
      exception.code,
      exception.message,
      exception.details,
      requestId,
    );
  }

  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const response = exception.getResponse();
    const message =
      typeof response === 'object' && response !== null && 'message' in response
        ? String(response.message)
        : exception.message;
    return withDetails(
      status,
      CODES_BY_STATUS[status] ?? `HTTP.${status}`,
      message,
      undefined,
      requestId,
    );
  }

  if (exception instanceof QueryFailedError) {
    const pgCode = (exception as QueryFailedError & { code?: string }).code;
    const mapped = pgCode === undefined ? undefined : POSTGRES_CLIENT_ERRORS[pgCode];
    if (mapped) {
      return withDetails(mapped.status, mapped.code, mapped.message, undefined, requestId);
    }
  }

  // Errors raised by Fastify itself before a handler runs: body too large, bad JSON, prototype keys.
  const fastifyStatus = (exception as { statusCode?: unknown } | null)?.statusCode;
  if (typeof fastifyStatus === 'number' && fastifyStatus >= 400 && fastifyStatus < 500) {
    const message = fastifyMessage(exception);
    return withDetails(
      fastifyStatus,
      CODES_BY_STATUS[fastifyStatus] ?? `HTTP.${fastifyStatus}`,
      message,
      undefined,
      requestId,
    );
  }

  logger.error({ err: exception, requestId }, 'Unhandled error');
  return {
    statusCode: HttpStatus.INTERNAL_SERVER_ERROR,
    code: 'INTERNAL.ERROR',
    message: 'The server failed to handle the request; quote the request id when reporting it',
    requestId,
  };
}

function fastifyMessage(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'Request body is larger than the configured limit (BODY_LIMIT_BYTES)';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported Content-Type; send application/json';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'Request body is empty but Content-Type is application/json';
    default:
      return `Request body is not valid JSON: ${message ?? 'unknown parse error'}`;
  }
}

function withDetails(
  statusCode: number,
  code: string,
  message: string,
  details: unknown,
  requestId: string | undefined,
): ErrorBody {
  const body: ErrorBody = { statusCode, code, message };
  if (details !== undefined) body.details = details;
  if (requestId !== undefined) body.requestId = requestId;
  return body;
}

@Catch()
export class ErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const body = toErrorBody(exception, String(request.id));
    void reply.status(body.statusCode).send(body);
  }
}
