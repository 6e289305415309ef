import type { IncomingMessage } from 'node:http';

import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';

import { AppModule } from './app.module';
import { Clock, SystemClock } from './common/clock';
import { assignRequestId } from './common/request-id';
import { createValidationPipe } from './common/validation';
import { Runtime } from './config/runtime';

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
    },
  );
  app.useLogger(app.get(Logger));
  // Catalog files are sent raw and may be larger than JSON request bodies.
  app
    .getHttpAdapter()
    .getInstance()
    .addContentTypeParser(
      ['text/csv', 'application/octet-stream'],
      { parseAs: 'string', bodyLimit: runtime.settings.kevMaxBytes },
      (_request, body, done) => done(null, body),
    );
  app.useGlobalPipes(createValidationPipe());
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
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { useGlobalPrefix: false });

  return app;
}
