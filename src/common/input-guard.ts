import { DomainError } from './errors';

/** Deepest nesting accepted in a request body or query; deeper input is rejected, not walked. */
export const MAX_INPUT_DEPTH = 32;

/**
 * Rejects input PostgreSQL or the validators cannot take: NUL characters (PostgreSQL text cannot
 * store them) and nesting deeper than MAX_INPUT_DEPTH (the validators recurse once per level).
 * Throws a 400 naming the first offending field.
 */
export function assertAcceptableInput(value: unknown, root: string): void {
  const stack: { value: unknown; path: string; depth: number }[] = [
    { value, path: root, depth: 0 },
  ];
  while (stack.length > 0) {
    const { value: current, path, depth } = stack.pop()!;
    if (typeof current === 'string') {
      if (current.includes('\u0000')) reject(path, 'must not contain NUL characters');
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= MAX_INPUT_DEPTH) reject(path, `is nested deeper than ${MAX_INPUT_DEPTH} levels`);
    for (const [key, child] of Object.entries(current)) {
      if (key.includes('\u0000')) reject(path, 'has a key with a NUL character');
      stack.push({ value: child, path: path === '' ? key : `${path}.${key}`, depth: depth + 1 });
    }
  }
}

function reject(field: string, problem: string): never {
  const name = field === '' ? 'body' : field;
  throw new DomainError(400, 'REQUEST.INVALID', `Invalid request: ${name} ${problem}`, {
    fields: [{ field: name, problems: [`${name} ${problem}`] }],
  });
}
