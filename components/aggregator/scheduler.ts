/**
 * The schedule of the dCMMS edge specification §5.2 (docs/specification.md:
 * `schedule.every(1).minutes`, the day at 00:05) on node-schedule, behind a small interface so
 * tests fire jobs by hand (docs/conventions.md: inject the clock and the scheduler). Jobs only trigger work; what a tick closes is decided from the injected
 * clock and the persisted watermarks, so a late, early or missed firing cannot skip or repeat a bucket.
 */
import schedule from 'node-schedule';

export interface Scheduler {
  /** Runs `fn` on a cron rule (six fields, seconds first) in time zone `tz`; returns a cancel function. */
  schedule(name: string, rule: string, tz: string, fn: () => void): () => void;
}

export const nodeScheduler: Scheduler = {
  schedule(name, rule, tz, fn) {
    const job = schedule.scheduleJob(name, { rule, tz }, fn);
    if (!job) throw new Error(`node-schedule refused rule ${rule} (${tz})`);
    return () => job.cancel();
  },
};

/** For tests: jobs are kept by name and run when the test says so. */
export class ManualScheduler implements Scheduler {
  readonly jobs = new Map<string, { rule: string; tz: string; fn: () => void }>();

  schedule(name: string, rule: string, tz: string, fn: () => void): () => void {
    this.jobs.set(name, { rule, tz, fn });
    return () => this.jobs.delete(name);
  }

  fire(name: string): void {
    const j = this.jobs.get(name);
    if (!j) throw new Error(`no job ${name}`);
    j.fn();
  }
}

/** Cron rules: the minute job `closeDelayMs` (+1 s) after each minute, the day job at local 00:05 (dayCloseDelayMs). */
export function rules(closeDelayMs: number, dayCloseDelayMs: number): { minute: string; day: string } {
  const s = Math.min(59, Math.ceil(closeDelayMs / 1000) + 1);
  const d = Math.floor(dayCloseDelayMs / 1000) + 1;
  return { minute: `${s} * * * * *`, day: `${d % 60} ${Math.floor(d / 60) % 60} ${Math.floor(d / 3600)} * * *` };
}
