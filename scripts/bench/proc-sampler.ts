/**
 * Resource use of a process as the kernel reports it (proc(5)): resident memory from
 * /proc/<pid>/status VmRSS, CPU time from /proc/<pid>/stat utime+stime, and the whole machine's
 * busy share from /proc/stat, sampled on a timer. Timestamps are process.hrtime.bigint(), which on
 * Linux is CLOCK_MONOTONIC and so comparable with the timestamps the bench workers report.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export interface ProcSample {
  /** hrtime, ns. */
  t: bigint;
  rssBytes: number;
  /** utime + stime of the process, clock ticks. */
  cpuTicks: number;
  /** Whole machine: busy and total jiffies summed over all CPUs (/proc/stat `cpu` line). */
  sysBusy: number;
  sysTotal: number;
  /** CPU ticks of the process's descendants, by label (see ProcSampler's `classify`), per pid. */
  children: Map<number, { label: string; ticks: number }>;
}

export interface WindowStats {
  samples: number;
  rssMaxBytes: number;
  rssMeanBytes: number;
  /** CPU time of the process over the window / wall time; 100 = one core fully busy. */
  cpuPercent: number;
  /** Share of all cores that were busy over the window (every process), 0-100. */
  machineBusyPercent: number;
  /** The same as CPU time of every process together, 100 = one core (so up to 100 x cores). */
  machineCpuPercent: number;
  /** CPU% of the process's descendants (the components it runs), summed by label. */
  childrenCpuPercent: Record<string, number>;
}

let clockTicks: number | undefined;

/** USER_HZ for /proc/<pid>/stat; 100 on every Linux we know, but ask getconf. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export function readRss(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

function readCpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) is parenthesised and may hold spaces: split after the last ')'.
  // The rest starts at field 3 (state); utime and stime are fields 14 and 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

function readMachineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal [guest guest_nice: already inside user/nice]
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Every live descendant of `pid` (children of children included), from the ppid field of /proc/<n>/stat. */
function descendants(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = kids.get(ppid);
    if (list) list.push(Number(entry));
    else kids.set(ppid, [Number(entry)]);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const k of kids.get(queue.pop()!) ?? []) {
      out.push(k);
      queue.push(k);
    }
  }
  return out;
}

function readArgv(pid: number): string[] {
  const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  return (raw.endsWith('\0') ? raw.slice(0, -1) : raw).split('\0');
}

export function sampleProcess(pid: number, classify?: (argv: string[]) => string | undefined): ProcSample {
  const sys = readMachineCpu();
  const children = new Map<number, { label: string; ticks: number }>();
  if (classify) {
    for (const child of descendants(pid)) {
      try {
        const label = classify(readArgv(child));
        if (label !== undefined) children.set(child, { label, ticks: readCpuTicks(child) });
      } catch {
        // exited meanwhile
      }
    }
  }
  return { t: process.hrtime.bigint(), rssBytes: readRss(pid), cpuTicks: readCpuTicks(pid), sysBusy: sys.busy, sysTotal: sys.total, children };
}

/** Samples a process every `intervalMs` until stopped; a vanished process ends the sampling. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param classify labels a descendant by its argv (undefined: not counted); without it,
   *   descendants are not sampled.
   */
  constructor(
    private readonly pid: number,
    private readonly intervalMs = 200,
    private readonly classify?: (argv: string[]) => string | undefined,
  ) {}

  start(): void {
    this.take();
    this.timer = setInterval(() => this.take(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private take(): void {
    try {
      this.samples.push(sampleProcess(this.pid, this.classify));
    } catch {
      this.stop();
    }
  }

  /** Figures over the samples taken within [fromNs, toNs]. */
  window(fromNs: bigint, toNs: bigint): WindowStats {
    const inside = this.samples.filter((s) => s.t >= fromNs && s.t <= toNs);
    if (inside.length < 2) {
      throw new Error(`only ${inside.length} resource sample(s) inside the load window; run longer (--seconds)`);
    }
    const first = inside[0]!;
    const last = inside[inside.length - 1]!;
    const wallS = Number(last.t - first.t) / 1e9;
    const rss = inside.map((s) => s.rssBytes);
    const sysTotal = last.sysTotal - first.sysTotal;
    // Per descendant: its first and last ticks seen inside the window.
    const span = new Map<number, { label: string; first: number; last: number }>();
    for (const s of inside) {
      for (const [pid, c] of s.children) {
        const known = span.get(pid);
        if (known) known.last = c.ticks;
        else span.set(pid, { label: c.label, first: c.ticks, last: c.ticks });
      }
    }
    const childrenCpuPercent: Record<string, number> = {};
    for (const c of span.values()) {
      childrenCpuPercent[c.label] = (childrenCpuPercent[c.label] ?? 0) + ((c.last - c.first) / ticksPerSecond() / wallS) * 100;
    }
    return {
      samples: inside.length,
      rssMaxBytes: Math.max(...rss),
      rssMeanBytes: rss.reduce((a, b) => a + b, 0) / rss.length,
      cpuPercent: ((last.cpuTicks - first.cpuTicks) / ticksPerSecond() / wallS) * 100,
      machineBusyPercent: sysTotal > 0 ? ((last.sysBusy - first.sysBusy) / sysTotal) * 100 : 0,
      // /proc/stat counts in USER_HZ too.
      machineCpuPercent: ((last.sysBusy - first.sysBusy) / ticksPerSecond() / wallS) * 100,
      childrenCpuPercent,
    };
  }
}
