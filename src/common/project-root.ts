import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Finds the folder holding package.json above this file; the same from src/ (tests) and dist/src/. */
export function projectRoot(): string {
  let folder = __dirname;
  while (!existsSync(join(folder, 'package.json'))) {
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`No package.json above ${__dirname}`);
    folder = parent;
  }
  return folder;
}

export function bundledKevFile(): string {
  return join(projectRoot(), 'data', 'kev', 'known_exploited_vulnerabilities.json');
}
