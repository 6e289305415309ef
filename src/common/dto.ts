import { Transform } from 'class-transformer';

/** Trims strings before validation so " x " and "x" are one name; other types pass through to fail validation. */
export function Trim(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' ? value.trim() : value,
  );
}
