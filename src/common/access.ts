import { SetMetadata } from '@nestjs/common';

import type { Permission } from '../identity/permissions';

/** Access rule of a route: `public` needs no sign-in, the other form names a permission. */
export type AccessRule = { public: true } | { permission: Permission };

export const ACCESS_KEY = 'access-rule';

/** Declares that a route is open to anyone, signed in or not (health, sign-in). */
export const Public = (): MethodDecorator & ClassDecorator =>
  SetMetadata(ACCESS_KEY, { public: true });

/** Declares the permission a caller needs for a route; the table in identity/permissions.ts lists its roles. */
export const RequirePermission = (permission: Permission): MethodDecorator & ClassDecorator =>
  SetMetadata(ACCESS_KEY, { permission });
