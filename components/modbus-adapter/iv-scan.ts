/**
 * The `iv_scan` action: a device whose register map declares an IV-scan block (config.ts
 * `IvScanBlock`) sweeps one string and the result carries the curve.
 *
 * 1. The trigger is a declared writable point (deny-by-default: mapWriteTarget refuses anything
 *    else, and the point's min/max bound the string number); a scan already running is refused
 *    before any write.
 * 2. The string number is written to the trigger, then the state point is read every
 *    `statePollMs` until it says done or failed, or `timeoutMs` has passed (failed). With a
 *    `sequence` point, "done" counts only once the sequence differs from before the trigger: a
 *    device still showing the previous scan's "done" is not taken for this one.
 * 3. The curve is read in as few requests as the read limit allows (the device's
 *    `maxRegistersPerRead`, at most 125 registers, Modbus Application Protocol v1.1b3 §6.3/6.4):
 *    voltages and currents are ranges of the block planner, which merges adjacent blocks and never
 *    splits a 32-bit value across two reads.
 */
import type { IvCurveData } from '../lib/contract';
import { curveValueWidth, type CurveValueLayout, type IvScanBlock, type MapPoint, type RegisterMap } from './config';
import { planBlocks, type Range } from './planner';
import { encodeMapWrite, mapWriteTarget, WriteRefused, type DeviceIo, type WriteDone, type WriteParams } from './profile';
import { decodeMapPoint, decodeRaw, pointWidth, roundScaled } from './register-map';

export const IV_SCAN_DEFAULTS = { timeoutMs: 10000, statePollMs: 250, states: { idle: 0, running: 1, done: 2, failed: 3 } } as const;

/** Reads the numeric value of one map point. */
async function readNumber(io: DeviceIo, p: MapPoint): Promise<number> {
  const regs = await io.readRegisters(p.functionCode as 3 | 4, p.address, pointWidth(p));
  const v = decodeMapPoint(p, regs, 0).v;
  if (typeof v !== 'number') throw new Error(`${p.name} reads ${String(v)}, not a number`);
  return v;
}

/** Execute `iv_scan` `{ string }` on a register-map device. */
export async function ivScan(io: DeviceIo, map: RegisterMap, byName: ReadonlyMap<string, MapPoint>, params: WriteParams, maxRegisters: number): Promise<WriteDone> {
  const block: IvScanBlock | undefined = map.ivScan;
  if (!block) throw new WriteRefused("iv_scan needs a register map with an ivScan block; this device's map has none");
  if (!io.wait || !io.now) throw new WriteRefused('iv_scan needs a clock (not available here)');
  const k = params['string'];
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) throw new WriteRefused('iv_scan needs params.string, the string number (an integer from 1)');
  const trigger = mapWriteTarget(map, byName, { point: block.trigger });
  const registers = encodeMapWrite(trigger, k).registers;
  const point = (name: string): MapPoint => {
    const p = byName.get(name);
    // configProblems checks every reference; this is for a map that skipped it.
    if (!p) throw new WriteRefused(`ivScan refers to point ${name}, which the map does not have`);
    return p;
  };
  const states = { ...IV_SCAN_DEFAULTS.states, ...block.states };
  const statePoint = point(block.state);
  const seqPoint = block.sequence !== undefined ? point(block.sequence) : undefined;
  const seqBefore = seqPoint ? await readNumber(io, seqPoint) : undefined;
  if ((await readNumber(io, statePoint)) === states.running) throw new WriteRefused('an IV scan is already running on this device');

  await io.writeRegisters(trigger.address, registers);
  const timeoutMs = block.timeoutMs ?? IV_SCAN_DEFAULTS.timeoutMs;
  const pollMs = block.statePollMs ?? IV_SCAN_DEFAULTS.statePollMs;
  const started = io.now();
  for (;;) {
    const state = await readNumber(io, statePoint);
    if (state === states.failed) throw new Error(`the device reports the IV scan of string ${k} failed (${block.state} ${state})`);
    if (state === states.done && (seqPoint === undefined || (await readNumber(io, seqPoint)) !== seqBefore)) break;
    const waited = io.now() - started;
    if (waited >= timeoutMs) throw new Error(`IV scan of string ${k} not done after ${waited} ms (${block.state} ${state}; ivScan.timeoutMs ${timeoutMs})`);
    await io.wait(Math.min(pollMs, timeoutMs - waited));
  }

  if (block.string !== undefined) {
    const scanned = await readNumber(io, point(block.string));
    if (scanned !== k) throw new Error(`the device scanned string ${scanned}, not ${k} (another scan was triggered meanwhile?)`);
  }
  const c = block.curve;
  const count = block.pointCount !== undefined ? await readNumber(io, point(block.pointCount)) : c.maxPoints;
  if (!Number.isInteger(count) || count < 2 || count > c.maxPoints) throw new Error(`${block.pointCount ?? 'curve'}: ${count} points, not 2..${c.maxPoints}`);
  const { v, i, requests } = await readCurve(io, c.functionCode, c.voltage, c.current, count, maxRegisters);
  const data: IvCurveData = { kind: 'iv_curve', string: k, v, i };
  if (block.irradiance !== undefined) data.irradiance = await readNumber(io, point(block.irradiance));
  if (block.temperature !== undefined) data.temperature = await readNumber(io, point(block.temperature));
  return { message: `IV scan of string ${k}: ${count} points read in ${requests} request${requests === 1 ? '' : 's'} after ${io.now() - started} ms`, data };
}

type Series = 'v' | 'i';

/** Both series of `count` points, in as few reads of at most `maxRegisters` as the layout allows. */
export async function readCurve(io: DeviceIo, fc: 3 | 4, voltage: CurveValueLayout, current: CurveValueLayout, count: number, maxRegisters: number): Promise<{ v: number[]; i: number[]; requests: number }> {
  const ranges: Range<{ s: Series; n: number }>[] = [];
  for (const [s, l] of [['v', voltage], ['i', current]] as const) {
    const w = curveValueWidth(l.type);
    for (let n = 0; n < count; n++) ranges.push({ fc, address: l.address + n * w, width: w, ref: { s, n } });
  }
  const out = { v: new Array<number>(count).fill(0), i: new Array<number>(count).fill(0) };
  const blocks = planBlocks(ranges, { maxRegisters, maxGap: 0 });
  for (const b of blocks) {
    const regs = await io.readRegisters(fc, b.address, b.count);
    for (const r of b.ranges) {
      const l = r.ref.s === 'v' ? voltage : current;
      const raw = decodeRaw(l.type, regs, r.address - b.address, l.wordOrder ? { wordOrder: l.wordOrder } : {});
      const x = (raw as number) * (l.scale ?? 1);
      if (!Number.isFinite(x)) throw new Error(`curve ${r.ref.s}[${r.ref.n}] at ${r.address} is not a number`);
      out[r.ref.s][r.ref.n] = roundScaled(x);
    }
  }
  return { ...out, requests: blocks.length };
}
