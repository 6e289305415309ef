import { Module } from '@nestjs/common';

import { AuditModule } from '../audit/audit.module';
import { IdentityModule } from '../identity/identity.module';
import { VulnerabilitiesModule } from '../vulnerabilities/vulnerabilities.module';
import { DemoSeeder } from './demo-seeder';

@Module({
  imports: [AuditModule, IdentityModule, VulnerabilitiesModule],
  providers: [DemoSeeder],
  exports: [DemoSeeder],
})
export class DemoModule {}
