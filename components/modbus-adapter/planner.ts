/**
 * The block planner: turns the register ranges a device's points occupy into as few reads as
 * possible.
 *
 * Limits (Modbus Application Protocol v1.1b3): FC 3/4 read 1..125 registers (§6.3, §6.4), FC 1/2
 * read 1..2000 bits (§6.1, §6.2). A device may allow fewer (`maxRegistersPerRead`). Ranges of the
 * same function code are merged when the unmapped gap between them is at most `maxGap` registers:
 * reading across a gap costs bytes but saves a round trip, and many devices answer an unmapped
 * register with exception 2 (ILLEGAL DATA ADDRESS), so the default gap is 0.
 */
import type { ReadFunctionCode } from './config';

export interface Range<T = unknown> {
  fc: ReadFunctionCode;
  address: number;
  /** Registers (FC 3/4) or bits (FC 1/2). */
  width: number;
  ref: T;
}

export interface Block<T = unknown> {
  fc: ReadFunctionCode;
  address: number;
  count: number;
  /** The ranges read by this block, in address order. */
  ranges: Range<T>[];
}

export interface PlanOptions {
  /** Registers per FC 3/4 read, 1..125. */
  maxRegisters?: number;
  /** Bits per FC 1/2 read, 1..2000. */
  maxBits?: number;
  /** Unmapped registers (or bits) a block may span. */
  maxGap?: number;
}

export const MAX_READ_REGISTERS = 125;
export const MAX_READ_BITS = 2000;

export class PlanError extends Error {
  readonly code = 'PLAN_INVALID';
}

export function planBlocks<T>(ranges: readonly Range<T>[], opts: PlanOptions = {}): Block<T>[] {
  const maxRegs = Math.min(MAX_READ_REGISTERS, Math.max(1, opts.maxRegisters ?? MAX_READ_REGISTERS));
  const maxBits = Math.min(MAX_READ_BITS, Math.max(1, opts.maxBits ?? MAX_READ_BITS));
  const maxGap = Math.max(0, opts.maxGap ?? 0);
  const byFc = new Map<ReadFunctionCode, Range<T>[]>();
  for (const r of ranges) {
    if (!Number.isInteger(r.address) || r.address < 0 || r.width < 1 || r.address + r.width > 65536) {
      throw new PlanError(`range at ${r.address} width ${r.width} is outside the 0..65535 address space`);
    }
    byFc.set(r.fc, [...(byFc.get(r.fc) ?? []), r]);
  }
  const out: Block<T>[] = [];
  for (const fc of [...byFc.keys()].sort()) {
    const limit = fc === 1 || fc === 2 ? maxBits : maxRegs;
    const sorted = [...(byFc.get(fc) ?? [])].sort((a, b) => a.address - b.address || b.width - a.width);
    let cur: Block<T> | undefined;
    for (const r of sorted) {
      if (r.width > limit) throw new PlanError(`a point of ${r.width} at ${r.address} exceeds the ${limit} per read`);
      const end = r.address + r.width;
      if (cur) {
        const curEnd = cur.address + cur.count;
        const gap = r.address - curEnd;
        const newCount = Math.max(curEnd, end) - cur.address;
        if (gap <= maxGap && newCount <= limit) {
          cur.count = newCount;
          cur.ranges.push(r);
          continue;
        }
      }
      cur = { fc, address: r.address, count: r.width, ranges: [r] };
      out.push(cur);
    }
  }
  return out;
}

/**
 * Split one long contiguous span (a SunSpec model) into reads of at most `max` registers. Used
 * where every register of the span is known to exist.
 */
export function splitSpan(address: number, count: number, max: number): Array<{ address: number; count: number }> {
  const out: Array<{ address: number; count: number }> = [];
  const step = Math.max(1, Math.min(MAX_READ_REGISTERS, max));
  for (let a = address; a < address + count; a += step) out.push({ address: a, count: Math.min(step, address + count - a) });
  return out;
}
