import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import { ApiOperation, ApiTags } from '@nestjs/swagger';

import { Public, RequirePermission } from '../common/access';
import { DomainError } from '../common/errors';
import { currentContext, requireSignedInUser } from '../common/request-context';
import type { CurrentUser } from '../common/request-context';
import { uuidPipe } from '../common/uuid';
import { ApiTokensService, ApiTokenView } from './api-tokens.service';
import { AuthService, TokenPair } from './auth.service';
import { MfaService } from './mfa.service';
import { CreateApiTokenDto, MfaCodeDto, RefreshDto, SignInDto } from './users.dto';

/** Route option read by @fastify/rate-limit: these routes share a per-address limit across instances. */
export const AUTH_RATE_LIMITED = { rateLimit: {} };

@ApiTags('identity')
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly mfa: MfaService,
    private readonly apiTokens: ApiTokensService,
  ) {}

  @Post('sign-in')
  @HttpCode(200)
  @Public()
  @RouteConfig(AUTH_RATE_LIMITED)
  @ApiOperation({
    summary: 'Sign in with e-mail, password and, when enrolled, a TOTP or recovery code',
  })
  signIn(@Body() body: SignInDto): Promise<TokenPair> {
    return this.auth.signIn(body.email, body.password, body.code);
  }

  @Post('refresh')
  @HttpCode(200)
  @Public()
  @RouteConfig(AUTH_RATE_LIMITED)
  @ApiOperation({
    summary: 'Exchange a refresh token for new tokens; the old refresh token stops working',
  })
  refresh(@Body() body: RefreshDto): Promise<TokenPair> {
    return this.auth.refresh(body.refreshToken);
  }

  @Post('sign-out')
  @HttpCode(204)
  @RequirePermission('self.mfa')
  @ApiOperation({ summary: 'End the current session' })
  signOut(): Promise<void> {
    return this.auth.signOut();
  }

  @Get('me')
  @RequirePermission('self.mfa')
  me(): CurrentUser {
    return requireSignedInUser();
  }

  @Post('mfa/totp')
  @RequirePermission('self.mfa')
  @ApiOperation({
    summary: 'Start TOTP enrolment: returns the otpauth URI (for a QR code) and the secret',
  })
  startTotp(): Promise<{ otpauthUri: string; secret: string }> {
    const user = requireSignedInUser();
    return this.mfa.startEnrolment(user.id, user.email);
  }

  @Post('mfa/totp/confirm')
  @HttpCode(200)
  @RequirePermission('self.mfa')
  @RouteConfig(AUTH_RATE_LIMITED)
  @ApiOperation({
    summary: 'Confirm enrolment with a code; returns ten recovery codes, shown once',
  })
  confirmTotp(@Body() body: MfaCodeDto): Promise<{ recoveryCodes: string[] }> {
    return this.mfa.confirmEnrolment(requireSignedInUser().id, body.code);
  }

  @Post('mfa/verify')
  @HttpCode(204)
  @RequirePermission('self.mfa')
  @RouteConfig(AUTH_RATE_LIMITED)
  @ApiOperation({
    summary: 'Pass the second factor in the current session with a TOTP or recovery code',
  })
  verifyMfa(@Body() body: MfaCodeDto): Promise<void> {
    const context = currentContext();
    if (context?.channel !== 'session' || !context.sessionId) {
      throw new DomainError(
        403,
        'AUTH.SESSION_REQUIRED',
        'The second factor is passed in a signed-in session only',
      );
    }
    return this.auth.verifySecondFactor(requireSignedInUser().id, context.sessionId, body.code);
  }

  @Get('tokens')
  @RequirePermission('self')
  @ApiOperation({ summary: 'Your personal API tokens with last use' })
  listTokens(): Promise<ApiTokenView[]> {
    return this.apiTokens.list(requireSignedInUser().id);
  }

  @Post('tokens')
  @RequirePermission('self')
  @RouteConfig(AUTH_RATE_LIMITED)
  @ApiOperation({ summary: 'Create a scoped, expiring API token; the token is shown once' })
  createToken(@Body() body: CreateApiTokenDto): Promise<ApiTokenView & { token: string }> {
    if (currentContext()?.channel !== 'session') {
      throw new DomainError(
        403,
        'AUTH.SESSION_REQUIRED',
        'API tokens are created from a signed-in session only',
      );
    }
    return this.apiTokens.create(requireSignedInUser().id, body);
  }

  @Delete('tokens/:id')
  @HttpCode(204)
  @RequirePermission('self')
  revokeToken(@Param('id', uuidPipe) id: string): Promise<void> {
    return this.apiTokens.revoke(requireSignedInUser().id, id);
  }
}
