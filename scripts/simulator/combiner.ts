/**
 * DC combiner boxes: one per inverter, one channel per MPPT input string (the simulator's "string",
 * model 160 module ID k is channel k of the inverter's box). Each channel has a disconnect switch
 * (a coil: closed = the string feeds the inverter), a current sensor and a voltage sensor on the
 * string's side of the switch, and an insulation fault location channel (IEC 61557-9), as string
 * monitoring boxes on PV plants have. The box derives a status word per channel from them.
 *
 * The register map is declared once (ModbusAdapter register-map point shape) and both the served
 * registers and the emitted device configuration come from it: measurements are input registers
 * (FC 4, read-only by the Modbus data model), the status words holding registers (FC 3, read-only
 * here), the switches coils (FC 1, written with FC 5/15), the only writable points.
 */
import { DeviceInfo, DeviceTables, SimDevice } from './device';
import { encodeMapValue, registerBlock, type MapPoint } from './map-devices';
import { ModbusException, ModbusExceptionCode } from './modbus-server';
import type { InverterState, Plant } from './plant';
// The single-diode model and the string circuit the Analytics component expects a curve from.
import { atConditions, BYPASS_DIODE_V, fitModule, stringCurve, substringReference, voltageAt, type IvCurve, type ModuleDatasheet, type ReferenceDiode, type StringCircuit } from '../../components/analytics/iv';
import type { IvScanBlock, RegisterMap } from '../../components/modbus-adapter/config';

export const COMBINER_MAP_NAME = 'dcmms-sim-combiner';
/** Status word bits of a channel, bit 0 first. */
export const COMBINER_STATUS_BITS = ['open', 'lowCurrent', 'insulationFault'] as const;
/** Channels per box at most: each measurement has a block of 16 input registers. */
export const COMBINER_MAX_STRINGS = 16;
/** A closed string carrying less than this share of the box's strongest string is flagged lowCurrent. */
const LOW_CURRENT_SHARE = 0.5;
/** ... provided the strongest carries at least this (at night or when the inverter is off nothing is low). */
const LOW_CURRENT_MIN_A = 1;
/** Insulation below this is a fault (an inverter needs about 30 kilohm to start, IEC 62109-2). */
const INSULATION_ALARM_KOHM = 100;

/** IV scan states as the `ivScan.state` register holds them (0 idle, 1 running, 2 done, 3 failed). */
export const IV_SCAN_STATES = ['idle', 'running', 'done', 'failed'] as const;
export type IvScanState = (typeof IV_SCAN_STATES)[number];
/** Points of a scanned curve. */
export const IV_SCAN_POINTS = 100;
/** How long a sweep takes (simulated ms); the string gives the inverter nothing meanwhile. */
export const IV_SCAN_MS = 2000;
/** Below this plane-of-array irradiance (W/m2) a scan fails: there is no curve to speak of. */
export const IV_SCAN_MIN_IRRADIANCE = 20;
/** The curve's registers (input registers, FC 4): voltages from here, then currents. */
export const IV_CURVE_ADDRESS = 256;
/** Exception 06, SERVER DEVICE BUSY (Modbus Application Protocol v1.1b3 §7): a trigger while a scan runs. */
const SERVER_DEVICE_BUSY = 0x06;
/** Holding register of the scan trigger; state and the scan's conditions follow it. */
const IV_TRIGGER_ADDRESS = COMBINER_MAX_STRINGS;

/**
 * The simulator's module: a generic 72-cell 400 W monocrystalline module, 3 bypass diodes. 15 in
 * series give the plant's string maximum-power voltage (620 V) and 3 such strings in parallel an
 * MPPT input of about 18 kWp; each input's own rating (plant `stcW`, within 2 %) scales its currents.
 */
export const SIM_MODULE: ModuleDatasheet = { iscA: 10.36, vocV: 49.2, impA: 9.69, vmpV: 41.3, cellsInSeries: 72, alphaIscPctPerK: 0.05, betaVocPctPerK: -0.29, bypassDiodes: 3 };
export const SIM_LAYOUT = { modulesInSeries: 15, stringsInParallel: 3 } as const;
/** Share of a faulted string's substrings (cells behind one bypass diode) the shade of a `string-fault` covers. */
export const SHADED_SHARE = 1 / 3;

/** The register map of a box with `strings` channels (zero-based protocol addresses). */
export function combinerMap(strings: number): MapPoint[] {
  const ks = Array.from({ length: strings }, (_, i) => i + 1);
  const t = IV_TRIGGER_ADDRESS;
  return [
    ...ks.map((k): MapPoint => ({ name: `string${k}.closed`, address: k - 1, functionCode: 1, type: 'bool', writable: true })),
    ...ks.map((k): MapPoint => ({ name: `string${k}.current`, address: k - 1, functionCode: 4, type: 'int16', scale: 0.01, unit: 'A' })),
    ...ks.map((k): MapPoint => ({ name: `string${k}.voltage`, address: COMBINER_MAX_STRINGS + k - 1, functionCode: 4, type: 'uint16', scale: 0.1, unit: 'V' })),
    ...ks.map((k): MapPoint => ({ name: `string${k}.insulation`, address: 2 * COMBINER_MAX_STRINGS + k - 1, functionCode: 4, type: 'uint16', unit: 'kOhm' })),
    ...ks.map((k): MapPoint => ({ name: `string${k}.status`, address: k - 1, functionCode: 3, type: 'bitfield', bits: [...COMBINER_STATUS_BITS] })),
    // Right after the status words, so a poll reads them in the same request.
    { name: 'ivScan.trigger', address: t, functionCode: 3, type: 'uint16', writable: true, min: 1, max: strings },
    { name: 'ivScan.state', address: t + 1, functionCode: 3, type: 'uint16' },
    { name: 'ivScan.string', address: t + 2, functionCode: 3, type: 'uint16' },
    { name: 'ivScan.points', address: t + 3, functionCode: 3, type: 'uint16' },
    { name: 'ivScan.sequence', address: t + 4, functionCode: 3, type: 'uint16' },
    { name: 'ivScan.irradiance', address: t + 5, functionCode: 3, type: 'uint16', scale: 0.1, unit: 'W/m2' },
    { name: 'ivScan.temperature', address: t + 6, functionCode: 3, type: 'int16', scale: 0.1, unit: 'C' },
  ];
}

/** The IV-scan block of the box's register map (docs/modbus-adapter.md "IV scans"). */
export const COMBINER_IV_SCAN: IvScanBlock = {
  trigger: 'ivScan.trigger',
  state: 'ivScan.state',
  states: { idle: 0, running: 1, done: 2, failed: 3 },
  sequence: 'ivScan.sequence',
  string: 'ivScan.string',
  pointCount: 'ivScan.points',
  irradiance: 'ivScan.irradiance',
  temperature: 'ivScan.temperature',
  curve: {
    functionCode: 4,
    maxPoints: IV_SCAN_POINTS,
    voltage: { address: IV_CURVE_ADDRESS, type: 'uint16', scale: 0.1 },
    current: { address: IV_CURVE_ADDRESS + IV_SCAN_POINTS, type: 'uint16', scale: 0.01 },
  },
  timeoutMs: 10000,
  statePollMs: 250,
};

/** The whole register map as the ModbusAdapter configuration carries it: points and the IV-scan block. */
export function combinerRegisterMap(strings: number): RegisterMap {
  return { points: combinerMap(strings), ivScan: COMBINER_IV_SCAN };
}

/** Faults of a string's IV characteristic (fault kinds of the same names; faults.ts validates and applies them through here). */
export type StringIvFaultSpec =
  /** Ageing: the photocurrent falls by `loss` (default 0.2, 0..0.5) and Voc by half as much (raised saturation current); no step. */
  | { kind: 'degradation'; unit: number; string: number; loss?: number }
  /** Series resistance `factor` (default 4, 1..50) times the healthy one: a corroded connector, a loose joint. */
  | { kind: 'series-resistance'; unit: number; string: number; factor?: number }
  /** Shunt resistance `factor` (default 0.05, 0.001..1) times the healthy one: leakage, potential-induced degradation. */
  | { kind: 'shunt-resistance'; unit: number; string: number; factor?: number };
export const STRING_IV_FAULT_KINDS = ['degradation', 'series-resistance', 'shunt-resistance'] as const;

/** What is wrong with a string IV fault's own parameter, or undefined (unit and string are checked by faults.ts). */
export function stringIvFaultProblem(spec: StringIvFaultSpec): string | undefined {
  if (spec.kind === 'degradation' && spec.loss !== undefined && !(spec.loss >= 0 && spec.loss <= 0.5)) return 'degradation: loss is 0..0.5';
  if (spec.kind === 'series-resistance' && spec.factor !== undefined && !(spec.factor >= 1 && spec.factor <= 50)) return 'series-resistance: factor is 1..50';
  if (spec.kind === 'shunt-resistance' && spec.factor !== undefined && !(spec.factor >= 0.001 && spec.factor <= 1)) return 'shunt-resistance: factor is 0.001..1';
  return undefined;
}

/** One string's IV faults in force (1 / 0: healthy). */
export interface StringIv {
  degradation: number;
  seriesFactor: number;
  shuntFactor: number;
}

/** The simulator module's reference parameters (fitted once). */
let moduleRef: ReferenceDiode | undefined;
function simModule(): ReferenceDiode {
  moduleRef ??= fitModule(SIM_MODULE);
  return moduleRef;
}

/** Per inverter: its strings' IV faults and shading, the plant current multipliers they make, its box's scanner. */
interface BoxState {
  iv: Map<number, StringIv>;
  /** String index -> light share of a string-fault's shaded substrings. */
  shade: Map<number, number>;
  /** String index -> the plant's current multiplier from faults (string-fault x IV faults), before a scan takes the string off. */
  base: Map<number, number>;
  scanner?: IvScanner;
}
const boxes = new WeakMap<InverterState, BoxState>();
function boxState(inv: InverterState): BoxState {
  let b = boxes.get(inv);
  if (!b) {
    b = { iv: new Map(), shade: new Map(), base: new Map() };
    boxes.set(inv, b);
  }
  return b;
}

const HEALTHY: StringIv = { degradation: 0, seriesFactor: 1, shuntFactor: 1 };
const NOMINAL_W = SIM_MODULE.impA * SIM_MODULE.vmpV * SIM_LAYOUT.modulesInSeries * SIM_LAYOUT.stringsInParallel;
const BYPASS = SIM_MODULE.bypassDiodes ?? 3;
const SUBSTRINGS = SIM_LAYOUT.modulesInSeries * BYPASS;

/** A string's substring reference parameters: its own rating, and its IV faults. */
function stringReference(stcW: number, f: StringIv): ReferenceDiode {
  const mod = simModule();
  const sub = substringReference(mod, BYPASS, SIM_LAYOUT.stringsInParallel * (stcW / NOMINAL_W));
  // Degradation: less photocurrent, and Voc down by half the loss (I0 up by exp(dVoc / a)).
  return {
    ...sub,
    il: sub.il * (1 - f.degradation),
    alphaIsc: sub.alphaIsc * (1 - f.degradation),
    i0: sub.i0 * Math.exp((f.degradation / 2) * (voltageAt(mod, 0) / mod.a)),
    rs: sub.rs * f.seriesFactor,
    rsh: sub.rsh * f.shuntFactor,
  };
}

/** A string's circuit at irradiance `g` and cell temperature `tc`, a `shade` share of light on SHADED_SHARE of its substrings. */
function circuitOf(ref: ReferenceDiode, g: number, tc: number, shade: number): StringCircuit {
  if (shade >= 1) return { groups: [{ params: atConditions(ref, g, tc), count: SUBSTRINGS }], bypassV: BYPASS_DIODE_V };
  const shaded = Math.round(SUBSTRINGS * SHADED_SHARE);
  return {
    groups: [
      { params: atConditions(ref, g, tc), count: SUBSTRINGS - shaded },
      { params: atConditions(ref, g * shade, tc), count: shaded },
    ],
    bypassV: BYPASS_DIODE_V,
  };
}

/** The string's circuit now: its rating, its inverter's soiling, a string-fault's shade, its IV faults. */
export function stringCircuit(plant: Plant, inv: InverterState, index: number): StringCircuit {
  const b = boxState(inv);
  const ref = stringReference(inv.strings[index].stcW, b.iv.get(index) ?? HEALTHY);
  return circuitOf(ref, plant.poaFor(inv), plant.moduleTempFor(inv), b.shade.get(index) ?? 1);
}

/** Maximum power of a circuit from a fine curve (W). */
function pmax(c: StringCircuit): number {
  const k = stringCurve(c, 400);
  return Math.max(...k.v.map((v, j) => v * k.i[j]));
}

/**
 * Apply the string IV faults in `faults` (every fault in force; the others are ignored) after
 * faults.ts has reset and applied the rest: each faulted string's plant current multiplier becomes
 * what the fault costs at STC (its maximum power over the healthy string's), times a string-fault's
 * own factor; a string being scanned stays off.
 */
export function applyStringIvFaults(plant: Plant, faults: readonly { kind: string }[]): void {
  for (const inv of plant.inverters) {
    const b = boxState(inv);
    b.iv.clear();
    b.shade.clear();
    b.base.clear();
    for (const [index, factor] of inv.faults.stringFactor) {
      b.shade.set(index, factor);
      b.base.set(index, factor);
    }
  }
  for (const f of faults as readonly (StringIvFaultSpec | { kind: string })[]) {
    if (!(STRING_IV_FAULT_KINDS as readonly string[]).includes(f.kind)) continue;
    const spec = f as StringIvFaultSpec;
    const inv = plant.inverters[spec.unit - 1];
    if (!inv) continue;
    const b = boxState(inv);
    const iv = { ...(b.iv.get(spec.string - 1) ?? HEALTHY) };
    if (spec.kind === 'degradation') iv.degradation = spec.loss ?? 0.2;
    if (spec.kind === 'series-resistance') iv.seriesFactor = spec.factor ?? 4;
    if (spec.kind === 'shunt-resistance') iv.shuntFactor = spec.factor ?? 0.05;
    b.iv.set(spec.string - 1, iv);
  }
  for (const inv of plant.inverters) {
    const b = boxState(inv);
    for (const [index, iv] of b.iv) {
      const stcW = inv.strings[index].stcW;
      const ratio = pmax(circuitOf(stringReference(stcW, iv), 1000, 25, 1)) / pmax(circuitOf(stringReference(stcW, HEALTHY), 1000, 25, 1));
      b.base.set(index, (b.base.get(index) ?? 1) * ratio);
    }
    for (const [index, factor] of b.base) inv.faults.stringFactor.set(index, factor);
    b.scanner?.holdOff();
  }
}

/** The truth about a string's IV characteristic, for `sim.state()`. */
export interface StringIvTruth {
  /** IV faults in force (degradation 0, factors 1: healthy). */
  degradation: number;
  seriesFactor: number;
  shuntFactor: number;
  /** A string-fault's shade: light share on the shaded third of the substrings (1: none). */
  shade: number;
  /** The single-diode parameters of the whole string now (series sum of its substrings, unshaded part). */
  diode: { il: number; i0: number; rs: number; rsh: number; a: number };
  /** Irradiance on the modules (W/m2, after soiling) and cell temperature (C) now. */
  irradiance: number;
  cellTempC: number;
  /** This string's scan: running now, or the state of the box's last scan of it. */
  scan: IvScanState;
}

/** A box's IV scanner: one scan at a time, the string off its MPPT input for IV_SCAN_MS, then the curve in registers. */
export class IvScanner {
  state: IvScanState = 'idle';
  /** 1-based string of the scan under way or last done (0: none yet). */
  string = 0;
  sequence = 0;
  irradiance = 0;
  temperatureC = 0;
  curve: IvCurve = { v: new Array<number>(IV_SCAN_POINTS).fill(0), i: new Array<number>(IV_SCAN_POINTS).fill(0) };
  private endsAt: number | undefined;

  constructor(
    private readonly plant: Plant,
    private readonly inv: InverterState,
  ) {
    boxState(inv).scanner = this;
    plant.timers.push(this);
  }

  /** Whether string `index` (0-based) is off its input for a sweep now. */
  holds(index: number): boolean {
    return this.state === 'running' && this.string === index + 1;
  }

  /** Start a scan of string k (1-based); throws ModbusException when the box cannot. */
  start(k: number, assetId: string): void {
    if (this.state === 'running') throw new ModbusException(SERVER_DEVICE_BUSY, `${assetId}: a scan of string ${this.string} is running`);
    if (!Number.isInteger(k) || k < 1 || k > this.inv.strings.length) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_VALUE, `${assetId}: no string ${k}`);
    this.string = k;
    const s = this.inv.strings[k - 1];
    // An open disconnect or no light: nothing to sweep. The tracer says so at once.
    if (!s.closed || this.plant.weather.poa < IV_SCAN_MIN_IRRADIANCE) {
      this.state = 'failed';
      this.endsAt = undefined;
      return;
    }
    this.state = 'running';
    this.endsAt = this.plant.simMs + IV_SCAN_MS;
    this.holdOff();
    this.plant.compute(0);
  }

  /** Put the plant's current multipliers of this inverter's strings in force: the scanned one off. */
  holdOff(): void {
    const b = boxState(this.inv);
    for (const s of this.inv.strings) {
      const base = b.base.get(s.index);
      if (this.holds(s.index)) this.inv.faults.stringFactor.set(s.index, 0);
      else if (base !== undefined) this.inv.faults.stringFactor.set(s.index, base);
      else this.inv.faults.stringFactor.delete(s.index);
    }
  }

  nextEvent(): number | undefined {
    return this.endsAt;
  }

  /** The plant at `now` (its weather computed): finish a sweep that is due. */
  advance(now: number): boolean {
    if (this.endsAt === undefined || now < this.endsAt) return false;
    this.endsAt = undefined;
    const index = this.string - 1;
    this.curve = stringCurve(stringCircuit(this.plant, this.inv, index), IV_SCAN_POINTS);
    this.irradiance = this.plant.weather.poa;
    this.temperatureC = this.plant.moduleTempFor(this.inv);
    this.sequence = (this.sequence + 1) & 0xffff;
    this.state = 'done';
    this.holdOff();
    return true;
  }
}

/** The IV truth of every string of an inverter. */
function ivTruth(plant: Plant, inv: InverterState, index: number): StringIvTruth {
  const b = boxState(inv);
  const iv = b.iv.get(index) ?? HEALTHY;
  const c = stringCircuit(plant, inv, index);
  const p = c.groups[0].params;
  const n = c.groups.reduce((k, g) => k + g.count, 0);
  const sc = b.scanner;
  return {
    ...iv,
    shade: b.shade.get(index) ?? 1,
    diode: { il: p.il, i0: p.i0, rs: p.rs * n, rsh: p.rsh * n, a: p.a * n },
    irradiance: plant.poaFor(inv),
    cellTempC: plant.moduleTempFor(inv),
    scan: sc && sc.string === index + 1 ? sc.state : 'idle',
  };
}

export interface CombinerChannel {
  /** 1-based, as the string (MPPT input) of the inverter. */
  id: number;
  closed: boolean;
  a: number;
  v: number;
  insulationKOhm: number;
  status: (typeof COMBINER_STATUS_BITS)[number][];
  /** The string's IV characteristic and scan (the truth the Analytics component's findings are checked against). */
  iv: StringIvTruth;
}

/** What a box measures on its channels now. */
export function combinerChannels(plant: Plant, inv: InverterState): CombinerChannel[] {
  const strongest = Math.max(0, ...inv.strings.filter((s) => s.closed).map((s) => s.a));
  return inv.strings.map((s) => {
    const insulationKOhm = plant.insulationKOhm(inv, s.index);
    const status: CombinerChannel['status'] = [];
    if (!s.closed) status.push('open');
    if (s.closed && strongest >= LOW_CURRENT_MIN_A && s.a < LOW_CURRENT_SHARE * strongest) status.push('lowCurrent');
    if (insulationKOhm < INSULATION_ALARM_KOHM) status.push('insulationFault');
    return { id: s.index + 1, closed: s.closed, a: s.a, v: s.v, insulationKOhm, status, iv: ivTruth(plant, inv, s.index) };
  });
}

export class CombinerDevice extends SimDevice {
  readonly scanner: IvScanner;

  constructor(
    info: DeviceInfo,
    sync: () => void,
    private readonly plant: Plant,
    private readonly inv: InverterState,
    private readonly map: MapPoint[],
  ) {
    super(info, sync);
    this.scanner = new IvScanner(plant, inv);
  }

  protected tables(): DeviceTables {
    const channels = combinerChannels(this.plant, this.inv);
    const values: Record<string, number> = {};
    for (const c of channels) {
      values[`string${c.id}.current`] = c.a;
      values[`string${c.id}.voltage`] = c.v;
      values[`string${c.id}.insulation`] = c.insulationKOhm;
      values[`string${c.id}.status`] = c.status.reduce((w, name) => w | (1 << COMBINER_STATUS_BITS.indexOf(name)), 0);
    }
    const sc = this.scanner;
    Object.assign(values, {
      'ivScan.trigger': sc.string,
      'ivScan.state': IV_SCAN_STATES.indexOf(sc.state),
      'ivScan.string': sc.string,
      'ivScan.points': IV_SCAN_POINTS,
      'ivScan.sequence': sc.sequence,
      'ivScan.irradiance': sc.irradiance,
      'ivScan.temperature': sc.temperatureC,
    });
    const { voltage, current } = COMBINER_IV_SCAN.curve;
    const curve = [...sc.curve.v.map((v) => encodeMapValue({ name: 'v', address: 0, functionCode: 4, type: voltage.type, scale: voltage.scale }, v)[0]), ...sc.curve.i.map((i) => encodeMapValue({ name: 'i', address: 0, functionCode: 4, type: current.type, scale: current.scale }, i)[0])];
    return {
      holding: [{ start: 0, values: registerBlock(this.map, 3, values) }],
      input: [
        { start: 0, values: registerBlock(this.map, 4, values) },
        { start: IV_CURVE_ADDRESS, values: curve },
      ],
      coils: channels.map((c) => c.closed),
      discrete: [],
    };
  }

  protected applyRegisters(address: number, values: number[]): void {
    // The scan trigger is the one writable register: the string to scan.
    if (address !== IV_TRIGGER_ADDRESS || values.length !== 1) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: register ${address} is not writable (only the disconnect coils and the IV scan trigger ${IV_TRIGGER_ADDRESS} are)`);
    this.scanner.start(values[0], this.info.assetId);
  }

  protected applyCoils(address: number, values: boolean[]): void {
    if (address + values.length > this.inv.strings.length) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: coil ${address}+${values.length} is not mapped`);
    values.forEach((closed, i) => this.plant.setStringSwitch(this.inv, address + i, closed));
  }
}
