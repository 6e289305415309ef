import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { AuditModule } from '../audit/audit.module';
import { Provider } from './provider.entity';
import { ProvidersController } from './providers.controller';
import { ProvidersService } from './providers.service';
import { SystemHooks } from './system-hooks';
import { ThirdPartySystem } from './system.entity';
import { SystemsController } from './systems.controller';
import { SystemsService } from './systems.service';

@Module({
  imports: [TypeOrmModule.forFeature([Provider, ThirdPartySystem]), AuditModule],
  controllers: [ProvidersController, SystemsController],
  providers: [ProvidersService, SystemsService, SystemHooks],
  exports: [ProvidersService, SystemsService, SystemHooks],
})
export class CatalogModule {}
