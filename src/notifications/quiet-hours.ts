/** Minutes since local midnight of `time` in the IANA time zone. */
function localMinutes(time: Date, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(time);
  const hour = Number(parts.find((part) => part.type === 'hour')?.value ?? 0);
  const minute = Number(parts.find((part) => part.type === 'minute')?.value ?? 0);
  return hour * 60 + minute;
}

function toMinutes(hhmm: string): number {
  const [hours, minutes] = hhmm.split(':').map(Number);
  return hours * 60 + minutes;
}

/**
 * Returns when quiet hours end if `now` falls inside them, else null. Quiet hours may span
 * midnight (22:00-07:00).
 * NOTE: the end is computed by adding local minutes, so on a daylight-saving change night it can
 * be an hour off.
 */
export function quietHoursEnd(
  now: Date,
  timeZone: string,
  start: string,
  end: string,
): Date | null {
  const current = localMinutes(now, timeZone);
  const from = toMinutes(start);
  const to = toMinutes(end);
  const inside = from <= to ? current >= from && current < to : current >= from || current < to;
  if (!inside) return null;
  const minutesLeft = (to - current + 1440) % 1440;
  const endsAt = new Date(now.getTime() + minutesLeft * 60_000);
  endsAt.setUTCSeconds(0, 0);
  return endsAt;
}
