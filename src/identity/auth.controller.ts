import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';

import { Public, RequirePermission } from '../common/access';
import { currentContext, CurrentUser } from '../common/request-context';
import { AuthService, TokenPair } from './auth.service';
import { RefreshDto, SignInDto } from './users.dto';

@ApiTags('identity')
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Post('sign-in')
  @HttpCode(200)
  @Public()
  @ApiOperation({
    summary: 'Sign in with e-mail and password; returns an access and a refresh token',
  })
  signIn(@Body() body: SignInDto): Promise<TokenPair> {
    return this.auth.signIn(body.email, body.password);
  }

  @Post('refresh')
  @HttpCode(200)
  @Public()
  @ApiOperation({
    summary: 'Exchange a refresh token for new tokens; the old refresh token stops working',
  })
  refresh(@Body() body: RefreshDto): Promise<TokenPair> {
    return this.auth.refresh(body.refreshToken);
  }

  @Post('sign-out')
  @HttpCode(204)
  @RequirePermission('self')
  @ApiOperation({ summary: 'End the current session' })
  signOut(): Promise<void> {
    return this.auth.signOut();
  }

  @Get('me')
  @RequirePermission('self')
  me(): CurrentUser | undefined {
    return currentContext()?.user;
  }
}
