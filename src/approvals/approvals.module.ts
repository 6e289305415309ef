import { Module } from '@nestjs/common';

import { AuditModule } from '../audit/audit.module';
import { NotificationsModule } from '../notifications/notifications.module';
import { ApprovalDecisionsService } from './approval-decisions.service';
import { ApprovalPoliciesService } from './approval-policies.service';
import {
  ApprovalPoliciesController,
  EvidenceController,
  SystemApprovalController,
  ToolRequestsController,
} from './approvals.controller';
import { EvidenceService } from './evidence.service';
import { Reapproval } from './reapproval';
import { ToolRequestsService } from './tool-requests.service';

/** Tool approval: policies, security evaluation, decisions and re-approval (EVALUATE, APPROVE, SIGNED-DEPLOY). */
@Module({
  imports: [AuditModule, NotificationsModule],
  controllers: [
    ApprovalPoliciesController,
    ToolRequestsController,
    SystemApprovalController,
    EvidenceController,
  ],
  providers: [
    ApprovalPoliciesService,
    ToolRequestsService,
    ApprovalDecisionsService,
    EvidenceService,
    Reapproval,
  ],
  exports: [ToolRequestsService, ApprovalDecisionsService],
})
export class ApprovalsModule {}
