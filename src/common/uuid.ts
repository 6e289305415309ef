import { ParseUUIDPipe } from '@nestjs/common';

import { InvalidInputError } from './errors';

/** Path-id pipe: a malformed id is a 400 naming the parameter, never a database error. */
export const uuidPipe = new ParseUUIDPipe({
  exceptionFactory: () =>
    new InvalidInputError('Invalid id: expected a UUID', [
      { field: 'id', problems: ['id must be a UUID'] },
    ]),
});
