import { DynamicModule, Global, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { APP_FILTER, DiscoveryModule } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoggerModule } from 'nestjs-pino';

import { ApprovalsModule } from './approvals/approvals.module';
import { AccessModule } from './access/access.module';
import { AuditModule } from './audit/audit.module';
import { CatalogModule } from './catalog/catalog.module';
import { Clock, SystemClock } from './common/clock';
import { ContextMiddleware } from './common/context.middleware';
import { ErrorFilter } from './common/error.filter';
import { Transactions } from './common/transactions';
import { KEYS, Runtime, SETTINGS } from './config/runtime';
import { dataSourceOptions } from './database/data-source';
import { DemoModule } from './demo/demo.module';
import { HealthModule } from './health/health.module';
import { IdentityModule } from './identity/identity.module';
import { NotificationsModule } from './notifications/notifications.module';
import { ReviewsModule } from './reviews/reviews.module';
import { ReviewRemindersModule } from './reviews/reminders/review-reminders.module';
import { SchedulingModule } from './scheduling/scheduling.module';
import { VulnerabilitiesModule } from './vulnerabilities/vulnerabilities.module';

/** Log paths whose values are replaced by "[Redacted]": credentials in headers and bodies. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.secret',
  '*.credentialSecret',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.databaseUrl',
];

/** Settings, keys, clock and transactions, available to every module. */
@Global()
@Module({})
class CoreModule {
  static forRoot(runtime: Runtime, clock: Clock): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: SETTINGS, useValue: runtime.settings },
        { provide: KEYS, useValue: runtime.keys },
        { provide: Clock, useValue: clock },
        Transactions,
      ],
      exports: [SETTINGS, KEYS, Clock, Transactions],
    };
  }
}

@Module({})
export class AppModule implements NestModule {
  static forRoot(runtime: Runtime, clock: Clock = new SystemClock()): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot(runtime, clock),
        LoggerModule.forRoot({
          pinoHttp: {
            level: runtime.settings.logLevel,
            genReqId: (request) => String((request as { id?: string }).id),
            redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
            customLogLevel: (_request, response, error) =>
              error || response.statusCode >= 500
                ? 'error'
                : response.statusCode >= 400
                  ? 'warn'
                  : 'info',
          },
        }),
        TypeOrmModule.forRoot({
          ...dataSourceOptions(runtime.databaseUrl),
          autoLoadEntities: true,
        }),
        SchedulingModule,
        DiscoveryModule,
        AuditModule,
        IdentityModule,
        HealthModule,
        CatalogModule,
        VulnerabilitiesModule,
        DemoModule,
        NotificationsModule,
        ApprovalsModule,
        ReviewsModule,
        AccessModule,
        ReviewRemindersModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: ErrorFilter }],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(ContextMiddleware).forRoutes('*path');
  }
}
