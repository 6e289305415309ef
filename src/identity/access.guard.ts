import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';

import { ACCESS_KEY, AccessRule } from '../common/access';
import { DomainError } from '../common/errors';
import { currentContext, CurrentUser } from '../common/request-context';
import { SETTINGS } from '../config/runtime';
import type { Settings } from '../config/settings';
import { API_TOKEN_PREFIX, ApiTokensService } from './api-tokens.service';
import { AuthService } from './auth.service';
import { allows, MFA_GATED, Permission, Role } from './permissions';

/**
 * Deny by default: a route without an access declaration is closed to everyone. A declared
 * permission needs a session token or a personal API token whose user has one of the permission's
 * roles. Users whose roles require MFA reach only enrolment until their session passed the second
 * factor, and never reach MFA-gated permissions through an API token.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
    private readonly apiTokens: ApiTokensService,
    @Inject(SETTINGS) private readonly settings: Settings,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const rule = this.reflector.getAllAndOverride<AccessRule | undefined>(ACCESS_KEY, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (rule === undefined) {
      throw new DomainError(
        403,
        'AUTH.ROUTE_UNDECLARED',
        'This route declares no access rule and is closed',
      );
    }
    if ('public' in rule) return true;

    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const header = request.headers.authorization;
    const token =
      typeof header === 'string' && /^Bearer\s+\S+$/i.test(header)
        ? header.split(/\s+/)[1]
        : undefined;
    if (!token) {
      throw new DomainError(
        401,
        'AUTH.REQUIRED',
        'Sign in first: send "Authorization: Bearer <access token>"',
      );
    }

    const user = token.startsWith(API_TOKEN_PREFIX)
      ? await this.viaApiToken(token, rule.permission)
      : await this.viaSession(token, rule.permission);

    if (!allows(rule.permission, user.roles as Role[])) {
      throw new DomainError(
        403,
        'AUTH.FORBIDDEN',
        `Your roles do not include permission ${rule.permission}`,
        {
          permission: rule.permission,
        },
      );
    }
    return true;
  }

  private requiresMfa(user: CurrentUser): boolean {
    return user.roles.some((role) => this.settings.mfaRequiredRoles.includes(role));
  }

  private async viaSession(token: string, permission: Permission): Promise<CurrentUser> {
    const session = await this.auth.authenticate(token);
    if (!session) {
      throw new DomainError(
        401,
        'AUTH.TOKEN_INVALID',
        'The access token is unknown, expired or revoked; sign in again',
      );
    }
    this.enterContext(session.user, 'session', session.sessionId);
    if (this.requiresMfa(session.user) && !session.mfaVerified && permission !== 'self.mfa') {
      throw new DomainError(
        403,
        'AUTH.MFA_REQUIRED',
        'Your role requires a second factor: enrol one at POST /api/auth/mfa/totp, then sign in again with a code',
      );
    }
    return session.user;
  }

  private async viaApiToken(token: string, permission: Permission): Promise<CurrentUser> {
    const found = await this.apiTokens.authenticate(token);
    if (!found) {
      throw new DomainError(
        401,
        'AUTH.TOKEN_INVALID',
        'The API token is unknown, expired or revoked',
      );
    }
    this.enterContext(found.user, `api-token:${found.tokenId}`, undefined);
    if (!found.scopes.includes(permission)) {
      throw new DomainError(
        403,
        'AUTH.TOKEN_SCOPE',
        `The API token's scopes do not include ${permission}`,
        {
          permission,
        },
      );
    }
    if (
      this.requiresMfa(found.user) &&
      (MFA_GATED.includes(permission) || permission === 'self.mfa')
    ) {
      throw new DomainError(
        403,
        'AUTH.MFA_REQUIRED',
        `${permission} needs a second factor, which an API token cannot give; sign in with a code instead`,
      );
    }
    return found.user;
  }

  private enterContext(user: CurrentUser, channel: string, sessionId: string | undefined): void {
    const requestContext = currentContext();
    if (!requestContext) return;
    requestContext.user = user;
    requestContext.sessionId = sessionId;
    requestContext.actor = user.id;
    requestContext.channel = channel;
  }
}
