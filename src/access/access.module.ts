import { Module } from '@nestjs/common';

import { AuditModule } from '../audit/audit.module';
import { NotificationsModule } from '../notifications/notifications.module';
import {
  AccessFindingsController,
  AccountsController,
  GrantsController,
  SystemAccessController,
} from './access.controller';
import { AccessFindingsService } from './access-findings.service';
import { AccountImportService } from './account-import.service';
import { AccountsService } from './accounts.service';
import { DeprovisioningTasksService } from './deprovisioning-tasks';
import { GrantExpiryQueue } from './grant-expiry';
import { GrantsService } from './grants.service';

@Module({
  imports: [AuditModule, NotificationsModule],
  controllers: [
    AccountsController,
    SystemAccessController,
    GrantsController,
    AccessFindingsController,
  ],
  providers: [
    AccountsService,
    GrantsService,
    GrantExpiryQueue,
    AccountImportService,
    AccessFindingsService,
    DeprovisioningTasksService,
  ],
  exports: [AccountsService, GrantsService, AccountImportService],
})
export class AccessModule {}
