/** Source of the current time; inject it instead of calling `new Date()` so tests can move time. */
export abstract class Clock {
  abstract now(): Date;
}

export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
}

/** Clock for tests, which stays at its time until set or advanced. */
export class ManualClock extends Clock {
  private current: Date;

  constructor(start: Date | string = '2026-01-05T09:00:00Z') {
    super();
    this.current = new Date(start);
  }

  now(): Date {
    return new Date(this.current);
  }

  set(time: Date | string): void {
    this.current = new Date(time);
  }

  advance(milliseconds: number): void {
    this.current = new Date(this.current.getTime() + milliseconds);
  }

  advanceDays(days: number): void {
    this.advance(days * 86_400_000);
  }
}
