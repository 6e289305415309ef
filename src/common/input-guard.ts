import { DomainError } from './errors';

/** Deepest nesting accepted in a request body or query; deeper input is rejected, not walked. */
export const MAX_INPUT_DEPTH = 32;
/**
 * Maximum number of keys and array elements in one request body or query. Validation time grows
 * faster than linearly with unknown keys, so a body with far more fields than any route takes is
 * rejected before validation. The largest route body (1,000 bulk items of a few fields) stays well
 * below it.
 */
export const MAX_INPUT_FIELDS = 20_000;

/** A UTF-16 surrogate without its pair: not valid Unicode, and PostgreSQL would store it replaced. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Rejects input PostgreSQL or the validators cannot take: NUL characters (PostgreSQL text cannot
 * store them), lone surrogates, nesting deeper than MAX_INPUT_DEPTH (the validators recurse once
 * per level) and more than MAX_INPUT_FIELDS fields. Raw file bodies (Buffers) are not walked.
 * Throws a 400 naming the first offending field.
 */
export function assertAcceptableInput(value: unknown, root: string): void {
  const stack: { value: unknown; path: string; depth: number }[] = [
    { value, path: root, depth: 0 },
  ];
  let fields = 0;
  while (stack.length > 0) {
    const { value: current, path, depth } = stack.pop()!;
    if (typeof current === 'string') {
      if (current.includes('\u0000')) reject(path, 'must not contain NUL characters');
      if (LONE_SURROGATE.test(current)) reject(path, 'must not contain unpaired UTF-16 surrogates');
      continue;
    }
    if (typeof current !== 'object' || current === null || Buffer.isBuffer(current)) continue;
    if (depth >= MAX_INPUT_DEPTH) reject(path, `is nested deeper than ${MAX_INPUT_DEPTH} levels`);
    const entries = Object.entries(current);
    fields += entries.length;
    if (fields > MAX_INPUT_FIELDS) {
      reject(root, `has more than ${MAX_INPUT_FIELDS} fields in all; no route takes that many`);
    }
    for (const [key, child] of entries) {
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
