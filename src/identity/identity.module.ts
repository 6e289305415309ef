import { Inject, Injectable, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { DataSource } from 'typeorm';

import { AuditModule } from '../audit/audit.module';
import { runWithContext } from '../common/request-context';
import { SETTINGS } from '../config/runtime';
import { schemaIsCurrent } from '../database/data-source';
import type { Settings } from '../config/settings';
import { AccessGuard } from './access.guard';
import { AuthController } from './auth.controller';
import { ApiTokensService } from './api-tokens.service';
import { AuthService } from './auth.service';
import { MfaService } from './mfa.service';
import { OidcAccountsService } from './oidc-accounts.service';
import { OidcController } from './oidc.controller';
import { OidcService } from './oidc.service';
import { UsersController } from './users.controller';
import { UserHooks } from './user-hooks';
import { UsersService } from './users.service';

/** Creates the first platform admin from BOOTSTRAP_ADMIN_EMAIL/PASSWORD when no user exists. */
@Injectable()
export class AdminBootstrap implements OnApplicationBootstrap {
  private readonly logger = new Logger('AdminBootstrap');

  constructor(
    private readonly dataSource: DataSource,
    private readonly users: UsersService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const admin = this.settings.bootstrapAdmin;
    if (!admin) return;
    if (!(await schemaIsCurrent(this.dataSource))) {
      this.logger.warn(
        'Migrations are pending; the first platform admin is created after they are applied',
      );
      return;
    }
    const context = {
      requestId: 'bootstrap',
      clientAddress: undefined,
      actor: 'system',
      channel: 'system' as const,
    };
    await runWithContext(context, () =>
      this.dataSource.transaction(async (manager) => {
        await manager.query('SELECT pg_advisory_xact_lock(72107205)');
        const [{ any }] = await manager.query<{ any: boolean }[]>(
          'SELECT EXISTS (SELECT 1 FROM users) AS any',
        );
        if (any) return;
        await this.users.create(
          {
            email: admin.email,
            name: 'Platform administrator',
            password: admin.password,
            roles: ['platform-admin'],
          },
          null,
          manager,
        );
        this.logger.log(`Created the first platform admin ${admin.email}`);
      }),
    );
  }
}

@Module({
  imports: [AuditModule],
  controllers: [AuthController, OidcController, UsersController],
  providers: [
    UserHooks,
    AuthService,
    UsersService,
    MfaService,
    ApiTokensService,
    OidcService,
    OidcAccountsService,
    AdminBootstrap,
    { provide: APP_GUARD, useClass: AccessGuard },
  ],
  exports: [AuthService, UsersService, MfaService, UserHooks],
})
export class IdentityModule {}
