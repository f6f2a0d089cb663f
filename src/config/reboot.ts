// Whether a deploy may reboot hosts, and when.
//
// The policy: "auto" reboots the hosts whose new system needs it, "never" refuses a release
// that needs a reboot, "always" reboots every host that changes.
export const REBOOT_POLICIES = ['auto', 'never', 'always'] as const;
export type RebootPolicy = (typeof REBOOT_POLICIES)[number];

// The window: a daily span of wall-clock time ("02:00-05:00"), in the
// deployer's time zone or a named one ("02:00-05:00 Europe/Berlin"). A span whose end is before
// its start runs over midnight ("22:00-04:00").

export interface RebootWindow {
  /** Minutes after midnight: the window opens at `start` and closes at `end` (exclusive). */
  start: number;
  end: number;
  /** An IANA time zone; null: the deployer's own. */
  timeZone: string | null;
  /** As written, for messages. */
  text: string;
}

const WINDOW_PATTERN = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)(?:\s+(\S+))?$/;

/** The window, or a sentence saying what is wrong with the text. */
export function parseRebootWindow(text: string): RebootWindow | string {
  const m = WINDOW_PATTERN.exec(text.trim());
  if (!m) return 'expected "HH:MM-HH:MM" with an optional time zone, such as "02:00-05:00 UTC"';
  const [, h1, m1, h2, m2, zone] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  const start = Number(h1) * 60 + Number(m1);
  const end = Number(h2) * 60 + Number(m2);
  if (end > 24 * 60) return 'a window ends at 24:00 at the latest';
  if (start === end % (24 * 60)) return 'a window that opens when it closes is empty';
  if (zone !== undefined && !isTimeZone(zone))
    return `"${zone}" is not a time zone this machine knows (an IANA name, such as "UTC" or "Europe/Berlin")`;
  return { start, end, timeZone: zone ?? null, text: text.trim() };
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Minutes after midnight at `now`, on the window's clock. */
function minuteOfDay(window: RebootWindow, now: Date): number {
  const parts = new Intl.DateTimeFormat('en-GB', {
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    ...(window.timeZone ? { timeZone: window.timeZone } : {}),
  }).formatToParts(now);
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return part('hour') * 60 + part('minute');
}

export function windowIsOpen(window: RebootWindow, now: Date): boolean {
  const minute = minuteOfDay(window, now);
  return window.start < window.end
    ? minute >= window.start && minute < window.end
    : minute >= window.start || minute < window.end;
}

/** "14:03 UTC": the time on the window's clock, for a message that says the window is shut. */
export function clockAt(window: RebootWindow, now: Date): string {
  const minute = minuteOfDay(window, now);
  const hhmm = `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
  return window.timeZone ? `${hhmm} ${window.timeZone}` : hhmm;
}
