/** Body of every error response. */
export interface ErrorBody {
  statusCode: number;
  code: string;
  message: string;
  details?: unknown;
  requestId?: string;
}

/** One invalid input field; nested fields use dotted paths with indexes, e.g. `items.2.id`. */
export interface FieldProblem {
  field: string;
  problems: string[];
}

/**
 * Error thrown by services for expected failures. The code is stable and machine-readable
 * (`AREA.REASON`); the global filter turns it into the HTTP status and body.
 */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export class NotFoundError extends DomainError {
  constructor(entity: string, id: string) {
    super(
      404,
      `${entity.toUpperCase().replace(/\s+/g, '_')}.NOT_FOUND`,
      `${entity} ${id} was not found`,
      { id },
    );
  }
}

export class ConflictError extends DomainError {
  constructor(code: string, message: string, details?: unknown) {
    super(409, code, message, details);
  }
}

export class StaleVersionError extends ConflictError {
  constructor(entity: string, id: string, expected: number, current: number) {
    super(
      `${entity.toUpperCase().replace(/\s+/g, '_')}.STALE_VERSION`,
      `${entity} ${id} is at version ${current}, not ${expected}; reload it and apply the change again`,
      { id, expectedVersion: expected, currentVersion: current },
    );
  }
}

export class InvalidInputError extends DomainError {
  constructor(message: string, fields: FieldProblem[], code = 'REQUEST.INVALID') {
    super(400, code, message, { fields });
  }
}

/** Rejects a request that is well-formed but breaks a governance rule. */
export class RuleViolationError extends DomainError {
  constructor(code: string, message: string, details?: unknown) {
    super(422, code, message, details);
  }
}
