import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';

import { ACCESS_KEY, AccessRule } from '../common/access';
import { DomainError } from '../common/errors';
import { currentContext } from '../common/request-context';
import { AuthService } from './auth.service';
import { allows, Role } from './permissions';

/**
 * Deny by default: a route without an access declaration is closed to everyone; a declared
 * permission needs a valid bearer token whose user has one of the permission's roles.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
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
    if (!token)
      throw new DomainError(
        401,
        'AUTH.REQUIRED',
        'Sign in first: send "Authorization: Bearer <access token>"',
      );

    const session = await this.auth.authenticate(token);
    if (!session) {
      throw new DomainError(
        401,
        'AUTH.TOKEN_INVALID',
        'The access token is unknown, expired or revoked; sign in again',
      );
    }
    const requestContext = currentContext();
    if (requestContext) {
      requestContext.user = session.user;
      requestContext.sessionId = session.sessionId;
      requestContext.actor = session.user.id;
      requestContext.channel = 'session';
    }

    if (!allows(rule.permission, session.user.roles as Role[])) {
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
}
