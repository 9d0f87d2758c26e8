/**
 * The machine a benchmark ran on, printed beside every figure (docs/conventions.md "Benchmarks":
 * absolute figures and ratios, with the machine they ran on). Shared by all benchmarks.
 */
import fs from 'node:fs';
import os from 'node:os';

export interface Machine {
  /** `model name` from /proc/cpuinfo (falls back to os.cpus()). */
  cpuModel: string;
  /** Logical CPUs the process may use. */
  cores: number;
  /** MemTotal, bytes. */
  ramBytes: number;
  node: string;
  platform: string;
  arch: string;
  kernel: string;
}

function cpuModelFromProc(): string | undefined {
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    // x86 has `model name`; some arm64 kernels only `Hardware` or `CPU part`.
    const m = /^model name\s*:\s*(.+)$/m.exec(text) ?? /^Hardware\s*:\s*(.+)$/m.exec(text);
    return m?.[1]?.trim();
  } catch {
    return undefined;
  }
}

function ramFromProc(): number | undefined {
  try {
    const m = /^MemTotal:\s+(\d+)\s+kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function describeMachine(): Machine {
  return {
    cpuModel: cpuModelFromProc() ?? os.cpus()[0]?.model ?? 'unknown CPU',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    ramBytes: ramFromProc() ?? os.totalmem(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    kernel: os.release(),
  };
}

/** One line, e.g. `Intel(R) Xeon(R) ... | 2 cores | 23.5 GiB RAM | Node v20.19.0 | linux x64 6.8.0`. */
export function formatMachine(m: Machine): string {
  const gib = (m.ramBytes / 1024 ** 3).toFixed(1);
  return `${m.cpuModel} | ${m.cores} cores | ${gib} GiB RAM | Node ${m.node} | ${m.platform} ${m.arch} ${m.kernel}`;
}
