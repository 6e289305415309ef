import { ValidationError, ValidationPipe } from '@nestjs/common';

import { FieldProblem, InvalidInputError } from './errors';

/** Flattens class-validator errors into one entry per field, with dotted paths for nested fields. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldProblem[] {
  const fields: FieldProblem[] = [];
  for (const error of errors) {
    const path = parent === '' ? error.property : `${parent}.${error.property}`;
    const problems = Object.values(error.constraints ?? {});
    if (problems.length > 0) {
      fields.push({ field: path, problems });
    }
    if (error.children && error.children.length > 0) {
      fields.push(...flattenValidationErrors(error.children, path));
    }
  }
  return fields;
}

/**
 * Global pipe: strips nothing silently (unknown fields are errors), converts declared types and
 * reports every bad field, nested ones included, in a single 400.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => {
      const fields = flattenValidationErrors(errors);
      const names = fields.map((field) => field.field).join(', ');
      return new InvalidInputError(`Invalid request: check ${names}`, fields);
    },
  });
}
