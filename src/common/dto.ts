import { Transform } from 'class-transformer';

/** Trims strings before validation so " x " and "x" are one name; other types pass through to fail validation. */
export function Trim(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' ? value.trim() : value,
  );
}

/**
 * Converts a query-string boolean: "true" and "false" become booleans and any other value passes
 * through unchanged, so `@IsBoolean()` rejects it by name.
 */
export function QueryBoolean(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) => {
    if (value === 'true') return true;
    if (value === 'false') return false;
    return value;
  });
}
