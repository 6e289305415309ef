/** When a reviewer's digests go out: ISO weekdays (1 = Monday) and a local time, in an IANA zone. */
export interface DigestSchedule {
  weekdays: number[];
  /** Local time of day, HH:MM. */
  localTime: string;
  timeZone: string;
}

interface LocalDateTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let cached = formatters.get(timeZone);
  if (!cached) {
    cached = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, cached);
  }
  return cached;
}

/** Returns true when the runtime's time zone database knows `timeZone`. */
export function isKnownTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

function localDateTime(instantMs: number, timeZone: string): LocalDateTime {
  const parts = formatter(timeZone).formatToParts(new Date(instantMs));
  const value = (type: Intl.DateTimeFormatPartTypes): number =>
    Number(parts.find((part) => part.type === type)?.value ?? 0);
  return {
    year: value('year'),
    month: value('month'),
    day: value('day'),
    hour: value('hour'),
    minute: value('minute'),
    second: value('second'),
  };
}

/** Offset of `timeZone` from UTC at an instant, in milliseconds (positive east of Greenwich). */
function zoneOffsetMs(instantMs: number, timeZone: string): number {
  const local = localDateTime(instantMs, timeZone);
  const wallAsUtc = Date.UTC(
    local.year,
    local.month - 1,
    local.day,
    local.hour,
    local.minute,
    local.second,
  );
  return wallAsUtc - (instantMs - (((instantMs % 1000) + 1000) % 1000));
}

/**
 * Converts a local wall-clock time in `timeZone` to an instant. The offset is looked up at the
 * resulting instant, not at the wall time read as UTC, so the result is right on both sides of a
 * daylight-saving change. A wall time skipped by a spring-forward change maps to the instant one
 * gap later (02:30 becomes 03:30 in Europe/Berlin), and a wall time that occurs twice in autumn maps
 * to the second occurrence.
 */
export function localTimeToInstant(
  date: { year: number; month: number; day: number },
  hour: number,
  minute: number,
  timeZone: string,
): Date {
  const wall = Date.UTC(date.year, date.month - 1, date.day, hour, minute);
  const firstOffset = zoneOffsetMs(wall, timeZone);
  const guess = wall - firstOffset;
  const secondOffset = zoneOffsetMs(guess, timeZone);
  if (secondOffset === firstOffset) return new Date(guess);
  const retry = wall - secondOffset;
  if (zoneOffsetMs(retry, timeZone) === secondOffset) return new Date(retry);
  // Inside a spring-forward gap neither offset reproduces the wall time; use the earlier offset.
  return new Date(wall - Math.min(firstOffset, secondOffset));
}

/**
 * Returns the first slot of the schedule at or after `from`: the next local date whose ISO weekday
 * is listed, at the schedule's local time, converted with the zone's offset on that date.
 */
export function nextDigestSlot(from: Date, schedule: DigestSchedule): Date {
  if (schedule.weekdays.length === 0) {
    throw new Error('A digest schedule needs at least one weekday');
  }
  const [hour, minute] = schedule.localTime.split(':').map(Number);
  const start = localDateTime(from.getTime(), schedule.timeZone);
  // Eight days reach the same weekday a week later, which covers a slot earlier today.
  for (let offset = 0; offset <= 8; offset++) {
    const date = new Date(Date.UTC(start.year, start.month - 1, start.day + offset));
    const weekday = date.getUTCDay() === 0 ? 7 : date.getUTCDay();
    if (!schedule.weekdays.includes(weekday)) continue;
    const slot = localTimeToInstant(
      { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() },
      hour,
      minute,
      schedule.timeZone,
    );
    if (slot.getTime() >= from.getTime()) return slot;
  }
  throw new Error(`No digest slot within 8 days of ${from.toISOString()}`);
}
