/**
 * Gateway figures for the summary (dCMMS edge specification §8.2, the system figures of
 * `collect_metrics`, docs/specification.md: CPU,
 * memory, disk, uptime). CPU is the busy share of all cores between two samples (the first sample
 * has no previous one, so it reports null); memory uses free = MemAvailable (libuv on Linux);
 * disk follows df: used / (used + available to unprivileged users).
 */
import { statfsSync } from 'node:fs';
import os from 'node:os';
import type { SystemHealth } from '../lib/contract';

export interface SystemSampler {
  sample(diskPath: string): SystemHealth;
}

function cpuTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

export function createSystemSampler(): SystemSampler {
  let prev = cpuTimes();
  let first = true;
  return {
    sample(diskPath) {
      const now = cpuTimes();
      const dTotal = now.total - prev.total;
      const cpuPercent = first || dTotal <= 0 ? null : round1(100 * (1 - (now.idle - prev.idle) / dTotal));
      prev = now;
      first = false;
      const total = os.totalmem();
      const memoryPercent = total > 0 ? round1((100 * (total - os.freemem())) / total) : 0;
      let diskPercent: number | null = null;
      try {
        const s = statfsSync(diskPath);
        const used = s.blocks - s.bfree;
        const denom = used + s.bavail;
        diskPercent = denom > 0 ? round1((100 * used) / denom) : null;
      } catch {
        diskPercent = null; // a missing path is reported as "unknown", not as a crash
      }
      return { cpuPercent, memoryPercent, diskPercent, loadAvg1m: round1(os.loadavg()[0] ?? 0), uptimeS: Math.round(os.uptime()) };
    },
  };
}
