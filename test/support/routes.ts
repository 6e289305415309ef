import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { NestFastifyApplication } from '@nestjs/platform-fastify';

import { ACCESS_KEY, AccessRule } from '../../src/common/access';

export interface RouteInfo {
  method: string;
  path: string;
  rule: AccessRule | undefined;
}

const UNPREFIXED = ['health'];

/** Lists every controller route with its access declaration, as Nest registered it. */
export function listRoutes(app: NestFastifyApplication): RouteInfo[] {
  const discovery = app.get(DiscoveryService);
  const scanner = app.get(MetadataScanner);
  const reflector = app.get(Reflector);
  const routes: RouteInfo[] = [];

  for (const wrapper of discovery.getControllers()) {
    const controller = wrapper.metatype as (new (...args: unknown[]) => object) | null;
    if (!controller || !wrapper.instance) continue;
    const base = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
    const prototype = Object.getPrototypeOf(wrapper.instance) as Record<string, unknown>;
    for (const name of scanner.getAllMethodNames(prototype)) {
      const handler = prototype[name] as object;
      const path = Reflect.getMetadata(PATH_METADATA, handler) as string | undefined;
      if (path === undefined) continue;
      const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
      const joined = [base, path]
        .map((part) => part.replace(/^\/|\/$/g, ''))
        .filter(Boolean)
        .join('/');
      const prefix = UNPREFIXED.includes(joined.split('/')[0]) ? '' : '/api';
      routes.push({
        method,
        path: `${prefix}/${joined}`,
        rule: reflector.getAllAndOverride<AccessRule | undefined>(ACCESS_KEY, [
          handler as () => void,
          controller,
        ]),
      });
    }
  }
  return routes;
}

/** Routes that declare no access rule; the suite fails while this list is not empty. */
export function undeclaredRoutes(routes: RouteInfo[]): string[] {
  return routes
    .filter((route) => route.rule === undefined)
    .map((route) => `${route.method} ${route.path}`);
}

/** Fills path parameters with well-formed values that name nothing. */
export function concretePath(path: string): string {
  return path
    .replace(':cveId', 'CVE-2000-0001')
    .replace(/:[A-Za-z]+/g, '00000000-0000-4000-8000-00000000abcd');
}
