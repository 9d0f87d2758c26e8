/**
 * Fault injection. Faults are kept as a list of specs; injecting or clearing one resets every
 * fault effect and applies the remaining list again, so overlapping faults clear cleanly.
 */
import type { SimDevice } from './device';
import { IO_INPUTS, type Plant } from './plant';
import { applyStringIvFaults, STRING_IV_FAULT_KINDS, stringIvFaultProblem, type StringIvFaultSpec } from './combiner';

export type FaultSpec =
  /** One MPPT input's current drops to `factor` (default 0.1) of what it should be. `string` is 1-based (model 160 module ID). */
  | { kind: 'string-fault'; unit: number; string: number; factor?: number }
  /** Heat sink and cabinet run `deltaC` (default 40) hotter: above 75 C the inverter derates to 50 % and sets Evt1 OVER_TEMP. */
  | { kind: 'over-temperature'; unit: number; deltaC?: number }
  /**
   * Dirt on the modules: `loss` (default 0.25) of the irradiance, fixed, on top of the soiling that
   * accumulates by itself; one inverter's array, or all when `unit` is left out. The weather
   * station's reference cell stays clean.
   */
  | { kind: 'soiling'; unit?: number; loss?: number }
  /** The device stops answering (requests time out). */
  | { kind: 'comm-loss'; unit: number }
  /** The device's registers stop changing (a hung data logger). */
  | { kind: 'frozen'; unit: number }
  /**
   * Evt1 GROUND_FAULT (model 103) and Evt/DCEvt GROUND_FAULT (model 160); the inverter trips (St FAULT, W 0).
   * With `string` (1-based) the fault is that string's insulation: its combiner box shows it, and opening
   * the string's disconnect lets the inverter run on the other strings. Without, it is inside the inverter.
   */
  | { kind: 'ground-fault'; unit: number; string?: number }
  /** The tracker stops moving where it is. */
  | { kind: 'tracker-stuck' }
  /** The tracker controller's auto target is `offsetDeg` (default 5, -30..30) off the ideal angle (a wrong setting): the row tracks, off by that much. */
  | { kind: 'tracker-offset'; offsetDeg?: number }
  /** Force a digital input of the I/O module (index 0..7 or name such as 'doorClosed'). */
  | { kind: 'digital-input'; input: number | string; value: boolean }
  /** A string's IV characteristic: `degradation` (loss), `series-resistance`, `shunt-resistance` (factor); see combiner.ts. */
  | StringIvFaultSpec;

export type FaultKind = FaultSpec['kind'];
export const FAULT_KINDS: readonly FaultKind[] = ['string-fault', 'over-temperature', 'soiling', 'comm-loss', 'frozen', 'ground-fault', 'tracker-stuck', 'tracker-offset', 'digital-input', ...STRING_IV_FAULT_KINDS];

export class SimulatorError extends Error {
  readonly code = 'SIMULATOR_BAD_REQUEST';
}

function inputIndex(input: number | string): number {
  const i = typeof input === 'number' ? input : (IO_INPUTS as readonly string[]).indexOf(input);
  return i;
}

/** Throws SimulatorError naming what is wrong with a fault spec. */
export function validateFault(spec: FaultSpec, devices: Map<number, SimDevice>, stringsPerInverter: number): void {
  const s = spec as unknown as Record<string, unknown>;
  if (typeof s !== 'object' || s === null || !FAULT_KINDS.includes(s.kind as FaultKind)) {
    throw new SimulatorError(`fault kind must be one of ${FAULT_KINDS.join(', ')}`);
  }
  const needsInverter = (u: unknown): void => {
    const d = typeof u === 'number' ? devices.get(u) : undefined;
    if (d === undefined || d.info.kind !== 'inverter') throw new SimulatorError(`${spec.kind}: unit ${String(u)} is not an inverter`);
  };
  const needsString = (n: unknown): void => {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > stringsPerInverter) throw new SimulatorError(`${spec.kind}: string is the MPPT input number 1..${stringsPerInverter}`);
  };
  switch (spec.kind) {
    case 'string-fault': {
      needsInverter(spec.unit);
      needsString(spec.string);
      if (spec.factor !== undefined && !(spec.factor >= 0 && spec.factor <= 1)) throw new SimulatorError('string-fault: factor is 0..1');
      return;
    }
    case 'ground-fault':
      needsInverter(spec.unit);
      if (spec.string !== undefined) needsString(spec.string);
      return;
    case 'over-temperature':
      needsInverter(spec.unit);
      return;
    case 'soiling':
      if (spec.unit !== undefined) needsInverter(spec.unit);
      if (spec.loss !== undefined && !(spec.loss >= 0 && spec.loss < 1)) throw new SimulatorError('soiling: loss is 0..1');
      return;
    case 'comm-loss':
    case 'frozen':
      if (!devices.has(spec.unit)) throw new SimulatorError(`${spec.kind}: no device with unit id ${String(spec.unit)}`);
      return;
    case 'tracker-stuck':
      return;
    case 'tracker-offset':
      if (spec.offsetDeg !== undefined && !(typeof spec.offsetDeg === 'number' && spec.offsetDeg >= -30 && spec.offsetDeg <= 30 && spec.offsetDeg !== 0)) {
        throw new SimulatorError('tracker-offset: offsetDeg is -30..30 degrees, not 0');
      }
      return;
    case 'degradation':
    case 'series-resistance':
    case 'shunt-resistance': {
      needsInverter(spec.unit);
      needsString(spec.string);
      const problem = stringIvFaultProblem(spec);
      if (problem) throw new SimulatorError(problem);
      return;
    }
    case 'digital-input': {
      const i = inputIndex(spec.input);
      if (!Number.isInteger(i) || i < 0 || i >= IO_INPUTS.length) throw new SimulatorError(`digital-input: input is 0..${IO_INPUTS.length - 1} or one of ${IO_INPUTS.join(', ')}`);
      if (typeof spec.value !== 'boolean') throw new SimulatorError('digital-input: value is true or false');
      return;
    }
  }
}

/** Reset all fault effects, then apply `faults` in order. */
export function applyFaults(plant: Plant, devices: Map<number, SimDevice>, faults: FaultSpec[]): void {
  for (const inv of plant.inverters) {
    inv.faults.stringFactor.clear();
    inv.faults.overTempC = 0;
    inv.faults.groundFault = false;
    inv.faults.groundFaultStrings.clear();
    inv.faults.soiling = 0;
  }
  plant.tracker.stuck = false;
  plant.tracker.offsetDeg = 0;
  plant.inputOverrides.clear();
  const wantFrozen = new Set<number>();
  const wantLost = new Set<number>();
  // Inverter unit ids are 1..N in plant order.
  const inv = (unit: number) => plant.inverters[unit - 1];
  for (const f of faults) {
    switch (f.kind) {
      case 'string-fault':
        inv(f.unit)?.faults.stringFactor.set(f.string - 1, f.factor ?? 0.1);
        break;
      case 'over-temperature':
        if (inv(f.unit)) inv(f.unit).faults.overTempC = f.deltaC ?? 40;
        break;
      case 'ground-fault':
        if (f.string === undefined) {
          if (inv(f.unit)) inv(f.unit).faults.groundFault = true;
        } else inv(f.unit)?.faults.groundFaultStrings.add(f.string - 1);
        break;
      case 'soiling':
        for (const i of f.unit === undefined ? plant.inverters : [inv(f.unit)]) if (i) i.faults.soiling = f.loss ?? 0.25;
        break;
      case 'comm-loss':
        wantLost.add(f.unit);
        break;
      case 'frozen':
        wantFrozen.add(f.unit);
        break;
      case 'tracker-stuck':
        plant.tracker.stuck = true;
        break;
      case 'tracker-offset':
        plant.tracker.offsetDeg = f.offsetDeg ?? 5;
        break;
      case 'digital-input':
        plant.inputOverrides.set(inputIndex(f.input), f.value);
        break;
    }
  }
  applyStringIvFaults(plant, faults);
  plant.compute(0);
  for (const [unit, d] of devices) {
    d.commLoss = wantLost.has(unit);
    // Keep an existing snapshot while the device stays frozen; take one when it becomes frozen.
    if (wantFrozen.has(unit) !== d.isFrozen) d.freeze(wantFrozen.has(unit));
  }
}
