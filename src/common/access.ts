import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';

import { DomainError } from './errors';

/** Who may call a route. `public` needs no sign-in; the others name a permission. */
export type AccessRule = { public: true } | { permission: string };

export const ACCESS_KEY = 'access-rule';

/** Declares that a route is open to anyone, signed in or not (health, docs). */
export const Public = (): MethodDecorator & ClassDecorator =>
  SetMetadata(ACCESS_KEY, { public: true });

/** Declares the permission a caller needs for a route. */
export const RequirePermission = (permission: string): MethodDecorator & ClassDecorator =>
  SetMetadata(ACCESS_KEY, { permission });

/**
 * Deny by default: a route without an access declaration is refused for everyone, so a route
 * added without one cannot ship open.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
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
    // TODO: permission rules are accepted for everyone until users, roles and sign-in exist.
    return true;
  }
}
