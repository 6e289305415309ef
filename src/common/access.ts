import { SetMetadata } from '@nestjs/common';

import type { Permission } from '../identity/permissions';

/** Who may call a route. `public` needs no sign-in; the others name a permission. */
export type AccessRule = { public: true } | { permission: Permission };

export const ACCESS_KEY = 'access-rule';

/** Declares that a route is open to anyone, signed in or not (health, sign-in). */
export const Public = (): MethodDecorator & ClassDecorator =>
  SetMetadata(ACCESS_KEY, { public: true });

/** Declares the permission a caller needs for a route; the table in identity/permissions.ts lists its roles. */
export const RequirePermission = (permission: Permission): MethodDecorator & ClassDecorator =>
  SetMetadata(ACCESS_KEY, { permission });
