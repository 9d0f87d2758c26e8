/**
 * Local days of the site's IANA time zone with nothing but Intl (no tz database dependency):
 * daily buckets (dCMMS edge specification §5.1 level_4_daily, docs/specification.md) run from local midnight to the next
 * local midnight, so a spring-forward day has 23 hours and a fall-back day 25.
 *
 * A day starts at the first instant whose local date is that day. Offsets are found with
 * Intl.DateTimeFormat#formatToParts; days are cached (a few hundred per process lifetime).
 */

export interface LocalDay {
  /** YYYY-MM-DD in the zone. */
  day: string;
  start: number;
  end: number;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;

export class Zone {
  private readonly fmt: Intl.DateTimeFormat;
  private readonly byDay = new Map<string, LocalDay>();

  constructor(readonly timeZone: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
  }

  /** Local wall-clock fields of an instant. */
  private parts(ms: number): { y: number; mo: number; d: number; h: number; mi: number; s: number } {
    const o: Record<string, number> = {};
    for (const p of this.fmt.formatToParts(new Date(ms))) if (p.type !== 'literal') o[p.type] = Number(p.value);
    return { y: o['year'] ?? 0, mo: o['month'] ?? 0, d: o['day'] ?? 0, h: o['hour'] ?? 0, mi: o['minute'] ?? 0, s: o['second'] ?? 0 };
  }

  /** Local date of an instant, YYYY-MM-DD. */
  dateOf(ms: number): string {
    const p = this.parts(ms);
    return `${p.y}-${String(p.mo).padStart(2, '0')}-${String(p.d).padStart(2, '0')}`;
  }

  /** UTC offset at an instant, ms (local = utc + offset). */
  offsetAt(ms: number): number {
    const p = this.parts(ms);
    const asUtc = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s);
    return asUtc - Math.floor(ms / 1000) * 1000;
  }

  /** First instant of the local calendar day `day` (YYYY-MM-DD). */
  private startOf(day: string): number {
    const [y, m, d] = day.split('-').map(Number) as [number, number, number];
    const wall = Date.UTC(y, m - 1, d);
    // Two passes settle the offset (it may differ between the guess and the answer).
    let t = wall - this.offsetAt(wall);
    t = wall - this.offsetAt(t);
    if (this.dateOf(t) === day && this.dateOf(t - 1) !== day) return t;
    // Midnight skipped or repeated by a transition: search minute by minute around the guess for
    // the first instant of the day (transitions happen on whole minutes).
    let lo = t - 3 * HOUR;
    let hi = t + 3 * HOUR;
    while (hi - lo > MINUTE) {
      const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
      if (this.dateOf(mid) >= day) hi = mid;
      else lo = mid;
    }
    return hi;
  }

  /** The local day holding instant `ms`. */
  dayOf(ms: number): LocalDay {
    return this.day(this.dateOf(ms));
  }

  /** The local day named `day` (YYYY-MM-DD). */
  day(day: string): LocalDay {
    let d = this.byDay.get(day);
    if (!d) {
      const start = this.startOf(day);
      // The next day's date: 26 h after the start is always inside it (days last 23..25 h).
      const next = this.dateOf(start + 26 * HOUR);
      d = { day, start, end: this.startOf(next) };
      if (this.byDay.size > 4096) this.byDay.clear();
      this.byDay.set(day, d);
    }
    return d;
  }

  /** The day after `d`. */
  next(d: LocalDay): LocalDay {
    return this.dayOf(d.end);
  }
}
