import { Module } from '@nestjs/common';

import { AuditModule } from '../audit/audit.module';
import { IdentityModule } from '../identity/identity.module';
import { ReviewsModule } from '../reviews/reviews.module';
import { VulnerabilitiesModule } from '../vulnerabilities/vulnerabilities.module';
import { DemoSeeder } from './demo-seeder';

@Module({
  imports: [AuditModule, IdentityModule, VulnerabilitiesModule, ReviewsModule],
  providers: [DemoSeeder],
  exports: [DemoSeeder],
})
export class DemoModule {}
