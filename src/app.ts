import type { IncomingMessage } from 'node:http';

import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import { Logger } from 'nestjs-pino';
import secureJson from 'secure-json-parse';

import { AppModule } from './app.module';
import { Clock, SystemClock } from './common/clock';
import { DomainError } from './common/errors';
import { assertAcceptableInput } from './common/input-guard';
import { assignRequestId } from './common/request-id';
import { createValidationPipe } from './common/validation';
import { Runtime } from './config/runtime';
import { createRedis } from './scheduling/redis';

/** Builds the application (not yet listening); tests call this with their own runtime and clock. */
export async function buildApp(
  runtime: Runtime,
  clock: Clock = new SystemClock(),
): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: runtime.settings.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    genReqId: (request: IncomingMessage) => assignRequestId(request),
    // Lets in-flight requests finish on shutdown while new connections are refused.
    return503OnClosing: true,
  });

  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(runtime, clock),
    adapter,
    {
      bufferLogs: true,
      // The JSON parser is registered below, so Nest adds none of its own.
      bodyParser: false,
    },
  );
  app.useLogger(app.get(Logger));
  // JSON bodies: prototype keys are rejected by name, where Fastify's own parser gives one message
  // for every parse failure.
  app.getHttpAdapter().getInstance().removeContentTypeParser('application/json');
  app
    .getHttpAdapter()
    .getInstance()
    .addContentTypeParser(
      'application/json',
      { parseAs: 'string', bodyLimit: runtime.settings.bodyLimitBytes },
      (_request, body, done) => {
        try {
          done(null, parseJsonBody(body as string));
        } catch (error) {
          done(error as Error, undefined);
        }
      },
    );
  // Catalog files are sent raw and may be larger than JSON request bodies.
  app
    .getHttpAdapter()
    .getInstance()
    .addContentTypeParser(
      'text/csv',
      { parseAs: 'string', bodyLimit: runtime.settings.kevMaxBytes },
      (_request, body, done) => done(null, body),
    );
  // Other raw bodies (catalog files, evidence files) stay bytes; a route decodes them if it wants text.
  app
    .getHttpAdapter()
    .getInstance()
    .addContentTypeParser(
      'application/octet-stream',
      { parseAs: 'buffer', bodyLimit: runtime.settings.kevMaxBytes },
      (_request, body, done) => done(null, body),
    );
  app
    .getHttpAdapter()
    .getInstance()
    .addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: runtime.settings.evidenceMaxBytes },
      (_request, body, done) => done(null, body),
    );
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', async (request) => {
      // An evidence file over the limit is refused from its declared length, before it is read.
      if (request.method === 'POST' && request.url.split('?')[0] === '/api/evidence') {
        const declared = Number(request.headers['content-length'] ?? 0);
        if (declared > runtime.settings.evidenceMaxBytes) {
          throw new DomainError(
            413,
            'EVIDENCE.TOO_LARGE',
            `The evidence file is ${declared} bytes; the limit is ${runtime.settings.evidenceMaxBytes}`,
            { sizeBytes: declared, limitBytes: runtime.settings.evidenceMaxBytes },
          );
        }
      }
    });
  app.useGlobalPipes(createValidationPipe());
  await registerHardening(app, runtime);
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('preValidation', async (request) => {
      assertJsonUnlessUpload(
        request.routeOptions.url,
        request.headers['content-type'],
        request.body,
      );
      assertAcceptableInput(request.query, '');
      assertAcceptableInput(request.body, '');
    });
  app.setGlobalPrefix('api', { exclude: ['health/live', 'health/ready'] });

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Third-party software governance tracker')
      .setDescription(
        'Approvals, admin access, reviews, de-provisioning and patch status for remote-management and ' +
          'software-deployment tools (MITRE ATT&CK T1072).',
      )
      .setVersion('0.1.0')
      .addBearerAuth({
        type: 'http',
        scheme: 'bearer',
        description: 'Access token from POST /api/auth/sign-in, or a personal API token',
      })
      .build(),
  );
  // Every API route needs the bearer token except the few marked public; Swagger UI shows Authorize.
  document.security = [{ bearer: [] }];
  SwaggerModule.setup('docs', app, document, { useGlobalPrefix: false });

  return app;
}

/**
 * Security headers, CORS and the sign-in rate limit. The limit counts in Redis, so it holds across
 * instances; while Redis is unreachable it is skipped rather than blocking sign-in.
 */
async function registerHardening(app: NestFastifyApplication, runtime: Runtime): Promise<void> {
  const { settings } = runtime;
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // The OpenAPI page at /docs uses inline scripts and styles.
        scriptSrc: ["'self'", "'unsafe-inline'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
      },
    },
  });
  app.enableCors({ origin: settings.corsOrigins.length > 0 ? settings.corsOrigins : false });

  const redis = createRedis(settings.redisUrl, { failFast: true, name: 'gov-rate-limit' });
  redis.on('error', () => undefined);
  await app.register(rateLimit, {
    global: false,
    max: settings.authRateLimitPerMinute,
    timeWindow: 60_000,
    redis,
    nameSpace: `${settings.queuePrefix}-rate-limit-`,
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new DomainError(
        429,
        'REQUEST.RATE_LIMITED',
        `Too many sign-in or token requests from this address; retry in ${Math.ceil(context.ttl / 1000)} s`,
        { retryAfterSeconds: Math.ceil(context.ttl / 1000) },
      ),
  });
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onClose', async () => {
      redis.disconnect();
    });
}

/** Routes that take a raw file body (CSV or a KEV catalog); every other body must be JSON. */
const UPLOAD_ROUTES = [
  '/api/kev/imports/upload',
  '/api/users/import',
  '/api/systems/:id/account-imports',
  '/api/evidence',
];

function assertJsonUnlessUpload(
  route: string | undefined,
  contentType: string | undefined,
  body: unknown,
): void {
  if (body === undefined || route === undefined || UPLOAD_ROUTES.includes(route)) return;
  if (contentType !== undefined && !/^application\/json\b/i.test(contentType)) {
    throw new DomainError(
      415,
      'REQUEST.UNSUPPORTED_MEDIA_TYPE',
      `Send this request body as application/json (got ${contentType.slice(0, 60)})`,
    );
  }
}

/**
 * Parses a JSON request body, rejecting `__proto__` keys and `constructor.prototype` paths with a
 * 400 that names the problem instead of a generic parse error.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') {
    throw new DomainError(
      400,
      'REQUEST.INVALID',
      'Request body is empty but Content-Type is application/json',
    );
  }
  try {
    return secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    // The parser gives one message for both kinds of prototype key, so the text tells them apart.
    if (/forbidden prototype property/.test(reason)) {
      const key = /"__proto__"\s*:/.test(text) ? '__proto__' : 'constructor.prototype';
      throw new DomainError(400, 'REQUEST.INVALID', `Request body must not contain a ${key} key`, {
        fields: [{ field: key, problems: [`${key} keys are not accepted in request bodies`] }],
      });
    }
    throw new DomainError(400, 'REQUEST.INVALID', `Request body is not valid JSON: ${reason}`);
  }
}
