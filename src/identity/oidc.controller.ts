import { Controller, Get, Inject, Query, Redirect, Req, Res } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';

import { Public } from '../common/access';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { AUTH_RATE_LIMITED } from './auth.controller';
import {
  OIDC_ATTEMPT_TTL_SECONDS,
  OIDC_BROWSER_COOKIE,
  OidcService,
  OidcSignIn,
} from './oidc.service';
import { OidcStartQuery } from './users.dto';

@ApiTags('identity')
@Controller('auth/oidc')
export class OidcController {
  constructor(
    private readonly oidc: OidcService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  @Get('start')
  @Public()
  @RouteConfig(AUTH_RATE_LIMITED)
  @Redirect()
  @ApiOperation({
    summary: "Start OpenID Connect sign-in: redirects to the provider's authorization endpoint",
  })
  async start(
    @Query() query: OidcStartQuery,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<{ url: string; statusCode: number }> {
    const started = await this.oidc.start(query.returnTo);
    reply.header(
      'set-cookie',
      this.browserCookie(started.browserBinding, OIDC_ATTEMPT_TTL_SECONDS),
    );
    return { url: started.authorizationUrl, statusCode: 302 };
  }

  @Get('callback')
  @Public()
  @RouteConfig(AUTH_RATE_LIMITED)
  @ApiOperation({
    summary:
      'Finish OpenID Connect sign-in: returns the same tokens as password sign-in, plus returnTo',
  })
  async callback(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<OidcSignIn> {
    const separator = request.url.indexOf('?');
    const query = separator === -1 ? '' : request.url.slice(separator + 1);
    const binding = readCookie(request.headers.cookie, OIDC_BROWSER_COOKIE);
    // The attempt is spent by now whatever the outcome, so its cookie is of no further use.
    reply.header('set-cookie', this.browserCookie('', 0));
    return this.oidc.callback(query, binding);
  }

  /**
   * Builds the browser binding cookie. SameSite=Lax still sends it on the provider's top-level
   * redirect back to the callback, and Secure is set whenever the callback is served over https.
   */
  private browserCookie(value: string, maxAgeSeconds: number): string {
    const secure = this.settings.oidc?.redirectUri.startsWith('https:') ? '; Secure' : '';
    return `${OIDC_BROWSER_COOKIE}=${value}; Path=/api/auth/oidc; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure}`;
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const separator = part.indexOf('=');
    if (separator !== -1 && part.slice(0, separator).trim() === name) {
      return part.slice(separator + 1).trim() || undefined;
    }
  }
  return undefined;
}
