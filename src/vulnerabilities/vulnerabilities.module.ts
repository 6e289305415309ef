import { Module } from '@nestjs/common';

import { AuditModule } from '../audit/audit.module';
import { CatalogModule } from '../catalog/catalog.module';
import { FindingsController } from './findings.controller';
import { FindingsService } from './findings.service';
import { KevCatalogService } from './kev-catalog.service';
import { KevImportService } from './kev-import.service';
import { KevRefresh } from './kev-refresh';
import { KevController } from './kev.controller';
import { MatchingService } from './matching.service';

@Module({
  imports: [AuditModule, CatalogModule],
  controllers: [KevController, FindingsController],
  providers: [MatchingService, KevImportService, KevCatalogService, FindingsService, KevRefresh],
  exports: [KevImportService, KevCatalogService, FindingsService],
})
export class VulnerabilitiesModule {}
