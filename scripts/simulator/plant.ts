/**
 * The simulated solar plant's true state: weather, a single-axis tracker row, inverters with MPPT
 * strings, the revenue meter and a digital I/O module. Time only moves through `advanceTo`, which
 * integrates energy in steps of at most one simulated minute, so counters are monotonic and do not
 * depend on how often the plant is read. Physics in physics.ts.
 */
import {
  DEFAULT_TRACKER_GCR,
  ambientTemperature,
  inverterAc,
  inverterDcFor,
  irradiance,
  moduleTemperature,
  mulberry32,
  planeOfArray,
  pvString,
  rainBetween,
  rainEventsAround,
  rainRate,
  sunPosition,
  trackerIdealAngle,
  windSpeed,
} from './physics';
import { ImmediateControls } from './controls';

export interface PlantOptions {
  seed: number;
  latitude: number;
  longitude: number;
  inverters: number;
  stringsPerInverter: number;
  inverterRatedW: number;
  /** DC (STC) to AC rating ratio of each inverter. */
  dcAcRatio: number;
  /** 0 = clear sky all day, 1 = a cloud most of the time. */
  cloudiness: number;
  ambientMeanC: number;
  ambientSwingC: number;
  /** Site consumption (W) the meter sees besides the inverters. */
  auxLoadW: number;
  trackerLimitDeg: number;
  /** Ground coverage ratio of the tracker rows (module width / row pitch), for backtracking; 0 = true tracking. */
  trackerGcr: number;
  /** String maximum-power voltage at STC. */
  vmpStc: number;
  /** Soiling accumulating on the modules, % of irradiance lost per simulated day. */
  soilingRatePctPerDay: number;
  /** Probability of a rain event on a UTC day (only with cloudiness > 0). */
  rainChance: number;
  /** Rain (mm) in one event that washes the modules clean. */
  rainCleaningMm: number;
}

export const PLANT_DEFAULTS: PlantOptions = {
  seed: 1,
  latitude: 37.0,
  longitude: -2.5,
  inverters: 3,
  stringsPerInverter: 4,
  inverterRatedW: 60000,
  dcAcRatio: 1.2,
  cloudiness: 0.3,
  ambientMeanC: 22,
  ambientSwingC: 7,
  auxLoadW: 1500,
  trackerLimitDeg: 55,
  trackerGcr: DEFAULT_TRACKER_GCR,
  vmpStc: 620,
  soilingRatePctPerDay: 0.2,
  rainChance: 0.1,
  rainCleaningMm: 2,
};

/** Accumulated soiling stops growing here (a plant that dirty is cleaned whatever it costs). */
export const SOILING_MAX_LOSS = 0.5;

export type InverterStateName = 'OFF' | 'SLEEPING' | 'STARTING' | 'MPPT' | 'THROTTLED' | 'SHUTTING_DOWN' | 'FAULT' | 'STANDBY';

export interface StringState {
  index: number;
  stcW: number;
  w: number;
  /** Voltage on the string's side of its disconnect (open-circuit voltage while lit and carrying no current). */
  v: number;
  a: number;
  /** Lifetime DC energy (Wh). */
  wh: number;
  /** The string's disconnect switch in its combiner box: closed = the string feeds its MPPT input. */
  closed: boolean;
}

export interface InverterFaults {
  /** String index -> current multiplier (a string fault). */
  stringFactor: Map<number, number>;
  /** Added to heat-sink and cabinet temperature. */
  overTempC: number;
  /** A ground fault inside the inverter (no string to isolate). */
  groundFault: boolean;
  /** Strings (0-based) with an insulation fault to ground: the inverter trips while one of them is connected. */
  groundFaultStrings: Set<number>;
  /** The `soiling` fault: a fixed fraction of irradiance lost, on top of the accumulated soiling. */
  soiling: number;
}

export interface SoilingState {
  /** Simulated time its modules were last cleaned by hand (or the simulator started). */
  cleanedAtMs: number;
  /** Start of the current accumulation: the later of cleanedAtMs and the last washing rain. */
  sinceMs: number;
  /** Fraction of irradiance lost to the dirt accumulated since then. */
  accumulated: number;
  /** What reaches the cells: (1 - accumulated) x (1 - the soiling fault's loss). */
  ratio: number;
}

export interface InverterState {
  index: number;
  ratedW: number;
  strings: StringState[];
  acW: number;
  dcW: number;
  /** Lifetime AC energy (Wh). */
  wh: number;
  heatsinkC: number;
  cabinetC: number;
  hz: number;
  vPhase: number;
  st: InverterStateName;
  events: string[];
  /** Model 123 as the inverter carries it out (registers, timers); the three fields below are what is in force. */
  controls: ImmediateControls;
  connected: boolean;
  limitPct: number;
  limitEnabled: boolean;
  faults: InverterFaults;
  soiling: SoilingState;
}

export interface WeatherState {
  ghi: number;
  /** Plane-of-array irradiance on the tracker (clean reference cell). */
  poa: number;
  ambientC: number;
  moduleC: number;
  windMs: number;
  windDirDeg: number;
  cloudTransmittance: number;
  sunElevationDeg: number;
  /** Today's POA insolation (kWh/m2), reset at local solar midnight. */
  insolationKWhM2: number;
  /** Rain rate now, mm/h. */
  rainMmH: number;
  /** Rain since local solar midnight, mm. */
  rainTodayMm: number;
}

export interface TrackerState {
  mode: 'auto' | 'manual' | 'stow';
  manualDeg: number;
  /** What the controller drives the row to (in auto mode the ideal angle plus a tracker-offset fault). */
  targetDeg: number;
  /** The row's true rotation. */
  actualDeg: number;
  /** The true ideal rotation now (SPA sun, backtracking, limits), whatever the mode and faults. */
  idealDeg: number;
  stuck: boolean;
  /** A tracker-offset fault: the controller's auto target is this far off the ideal. */
  offsetDeg: number;
  /** The tracker fault in effect (stuck wins over offset). */
  fault: 'tracker-stuck' | 'tracker-offset' | null;
  motorHours: number;
}

export interface MeterState {
  /** Positive = export to the grid. */
  w: number;
  whExp: number;
  whImp: number;
  hz: number;
  vPhase: number;
}

export interface IoState {
  coils: boolean[];
  inputs: boolean[];
}

/** Digital inputs of the I/O module. */
export const IO_INPUTS = ['doorClosed', 'spdOk', 'fireAlarm', 'breakerClosed', 'upsOnBattery', 'spare5', 'spare6', 'spare7'] as const;
/**
 * Relay outputs. Relay 0 drives the main breaker's shunt trip (the breaker opens, all inverters
 * lose the grid), relay 3 its closing coil (motor operator); the horn and the beacon are plain relays.
 */
export const IO_RELAYS = ['breakerTrip', 'alarmHorn', 'beacon', 'breakerClose', 'spare4', 'spare5', 'spare6', 'spare7'] as const;
const RELAY_TRIP = 0;
const RELAY_CLOSE = 3;
const INPUT_BREAKER_CLOSED = 3;
const INPUT_UPS_ON_BATTERY = 4;

const MINUTE_MS = 60000;
export const INSULATION_HEALTHY_KOHM = 10000;
export const INSULATION_FAULT_KOHM = 20;

/** A lit string's voltage with no current flowing (about 1.18 x its maximum-power voltage). */
function openCircuit(vmp: number): number {
  return vmp > 0 ? vmp * 1.18 : 0;
}
const TRACKER_DEG_PER_S = 0.2;

export class Plant {
  readonly o: PlantOptions;
  simMs: number;
  weather!: WeatherState;
  readonly inverters: InverterState[] = [];
  readonly tracker: TrackerState = { mode: 'auto', manualDeg: 0, targetDeg: 0, actualDeg: 0, idealDeg: 0, stuck: false, offsetDeg: 0, fault: null, motorHours: 1234.5 };
  readonly meter: MeterState;
  /** What the I/O module serves: `inputs` is the plant's own inputs with the DI faults laid over them (see compute). */
  readonly io: IoState = { coils: new Array<boolean>(8).fill(false), inputs: [] };
  /** Set with a DI fault: the input's value regardless of the plant. */
  readonly inputOverrides = new Map<number, boolean>();
  /**
   * The inputs as the plant drives them (door closed, SPD ok, no fire alarm, breaker as relay 0
   * leaves it, ...). Kept apart from `io.inputs` so that clearing a DI fault brings back the
   * plant's value instead of leaving the forced one in place.
   */
  private readonly plantInputs: boolean[] = [true, true, false, true, false, false, false, false];
  private insolationDay = -1;
  /** The last instant a rain washed the modules clean (-Infinity: none yet). */
  private lastRainCleanMs = -Infinity;
  /**
   * The main breaker at the grid connection. A shunt trip latches: it opens on the trip relay and
   * stays open until the closing coil (or someone on site) closes it again.
   */
  breakerClosed = true;
  /** Timed processes besides the inverters' model 123 controls (a combiner box's IV scan), stepped at their instants as those are. */
  readonly timers: { nextEvent(): number | undefined; advance(now: number): boolean }[] = [];

  constructor(opts: Partial<PlantOptions>, startMs: number) {
    this.o = { ...PLANT_DEFAULTS, ...opts };
    this.simMs = startMs;
    const rnd = mulberry32(this.o.seed);
    const stcW = (this.o.inverterRatedW * this.o.dcAcRatio) / this.o.stringsPerInverter;
    for (let i = 0; i < this.o.inverters; i++) {
      this.inverters.push({
        index: i,
        ratedW: this.o.inverterRatedW,
        strings: Array.from({ length: this.o.stringsPerInverter }, (_, s) => ({ index: s, stcW: stcW * (0.98 + 0.04 * rnd()), w: 0, v: 0, a: 0, wh: 2e6 + Math.floor(rnd() * 1e6), closed: true })),
        acW: 0,
        dcW: 0,
        wh: 8e6 + Math.floor(rnd() * 4e6),
        heatsinkC: 0,
        cabinetC: 0,
        hz: 50,
        vPhase: 230,
        st: 'SLEEPING',
        events: [],
        controls: new ImmediateControls(Math.imul(this.o.seed, 31) + i + 1),
        connected: true,
        limitPct: 100,
        limitEnabled: false,
        faults: { stringFactor: new Map(), overTempC: 0, groundFault: false, groundFaultStrings: new Set(), soiling: 0 },
        // The plant starts clean: soiling accumulates from the simulator's start.
        soiling: { cleanedAtMs: startMs, sinceMs: startMs, accumulated: 0, ratio: 1 },
      });
    }
    this.meter = { w: 0, whExp: 25e6 + Math.floor(rnd() * 1e6), whImp: 4e5 + Math.floor(rnd() * 1e5), hz: 50, vPhase: 230 };
    this.compute(0);
    // Start with the row already where it should be.
    this.tracker.actualDeg = this.tracker.targetDeg;
    this.compute(0);
  }

  get gridOk(): boolean {
    return this.breakerClosed;
  }

  /**
   * Relay writes of the I/O module. The breaker is trip-free: while the trip relay is energized it
   * stays open whatever the closing coil does; the closing coil acts on its rising edge only (anti-
   * pumping: holding it on does not close the breaker again after a later trip).
   */
  writeRelays(address: number, values: boolean[]): void {
    const closeWas = this.io.coils[RELAY_CLOSE];
    values.forEach((v, i) => (this.io.coils[address + i] = v));
    if (this.io.coils[RELAY_TRIP]) this.breakerClosed = false;
    else if (!closeWas && this.io.coils[RELAY_CLOSE]) this.breakerClosed = true;
    this.compute(0);
  }

  /** The main breaker operated by hand at the switchgear; closing is refused (false) while the trip relay is energized. */
  operateBreaker(closed: boolean): boolean {
    if (closed && this.io.coils[RELAY_TRIP]) return false;
    this.breakerClosed = closed;
    this.compute(0);
    return true;
  }

  /**
   * Move simulated time forward to `t`, integrating energy. Never moves backwards. A step ends
   * where an inverter's control timer fires (model 123 window, revert, ramp end), so that the
   * energy before that instant is counted with the controls as they were, whenever the plant is read.
   */
  advanceTo(t: number): void {
    while (this.simMs < t) {
      let end = Math.min(this.simMs + MINUTE_MS, t);
      for (const inv of this.inverters) {
        const e = inv.controls.nextEvent();
        if (e !== undefined && e > this.simMs && e < end) end = e;
      }
      for (const x of this.timers) {
        const e = x.nextEvent();
        if (e !== undefined && e > this.simMs && e < end) end = e;
      }
      const dt = end - this.simMs;
      this.simMs = end;
      this.compute(dt);
      const h = dt / 3600000;
      for (const inv of this.inverters) {
        inv.wh += inv.acW * h;
        for (const s of inv.strings) s.wh += s.w * h;
      }
      if (this.meter.w >= 0) this.meter.whExp += this.meter.w * h;
      else this.meter.whImp += -this.meter.w * h;
      this.weather.insolationKWhM2 += (this.weather.poa * h) / 1000;
      let fired = false;
      for (const inv of this.inverters) fired = inv.controls.advance(this.simMs) || fired;
      for (const x of this.timers) fired = x.advance(this.simMs) || fired;
      if (fired) this.compute(0);
    }
  }

  /** Clean the modules of one inverter's array (index), or of all: accumulated soiling back to 0. */
  clean(index?: number): void {
    for (const inv of this.inverters) if (index === undefined || inv.index === index) inv.soiling.cleanedAtMs = this.simMs;
    this.compute(0);
  }

  /** A write of model 123 points to an inverter, now. */
  writeControls(inv: InverterState, updates: Record<string, number | string>): void {
    inv.controls.write(this.simMs, updates);
    this.compute(0);
  }

  /** Recompute instantaneous values at simMs (dt: simulated ms since the last compute, for the tracker). */
  compute(dtMs: number): void {
    const o = this.o;
    const t = this.simMs;
    const sun = sunPosition(t, o.latitude, o.longitude);
    // Rain needs clouds: a plant configured with a clear sky gets none.
    const rainChance = o.cloudiness > 0 ? o.rainChance : 0;
    const rain = rainRate(o.seed, t, rainChance);
    const irr = irradiance(sun, t, o.seed, o.cloudiness, rain > 0);
    // A rain of rainCleaningMm or more washes the modules; compute runs at least every simulated
    // minute while time moves, so no washing instant is missed.
    for (const ev of rainEventsAround(o.seed, t, rainChance)) {
      const washedAt = ev.startMs + (o.rainCleaningMm / ev.rateMmH) * 3600000;
      if (washedAt <= ev.endMs && washedAt <= t && washedAt > this.lastRainCleanMs) this.lastRainCleanMs = washedAt;
    }
    const tr = this.tracker;
    tr.idealDeg = trackerIdealAngle(sun, o.trackerLimitDeg, o.trackerGcr);
    const offsetTarget = Math.max(-o.trackerLimitDeg, Math.min(o.trackerLimitDeg, tr.idealDeg + tr.offsetDeg));
    tr.targetDeg = tr.mode === 'stow' ? 0 : tr.mode === 'manual' ? tr.manualDeg : offsetTarget;
    tr.fault = tr.stuck ? 'tracker-stuck' : tr.offsetDeg !== 0 ? 'tracker-offset' : null;
    if (!tr.stuck) {
      const step = (TRACKER_DEG_PER_S * dtMs) / 1000;
      const diff = tr.targetDeg - tr.actualDeg;
      if (Math.abs(diff) <= step) tr.actualDeg = tr.targetDeg;
      else {
        tr.actualDeg += Math.sign(diff) * step;
        tr.motorHours += dtMs / 3600000;
      }
    }
    const poa = planeOfArray(sun, irr, tr.actualDeg);
    const wind = windSpeed(t, o.seed);
    const ambientC = ambientTemperature(t, o.longitude, o.ambientMeanC, o.ambientSwingC);
    const day = Math.floor((t / 3600000 + o.longitude / 15) / 24);
    const insolation = day === this.insolationDay && this.weather ? this.weather.insolationKWhM2 : 0;
    this.insolationDay = day;
    const localMidnightMs = (day * 24 - o.longitude / 15) * 3600000;
    this.weather = {
      ghi: irr.ghi,
      poa,
      ambientC,
      moduleC: moduleTemperature(poa, ambientC, wind),
      windMs: wind,
      windDirDeg: (200 + 90 * Math.sin(t / 3.6e6)) % 360,
      cloudTransmittance: irr.cloudTransmittance,
      sunElevationDeg: sun.elevationDeg,
      insolationKWhM2: insolation,
      rainMmH: rain,
      rainTodayMm: rainBetween(o.seed, localMidnightMs, t, rainChance),
    };
    const hz = 50 + 0.03 * Math.sin(t / 7000);
    const vPhase = 230 + 3 * Math.sin(t / 11000);
    let total = 0;
    for (const inv of this.inverters) {
      const sg = inv.soiling;
      sg.sinceMs = Math.max(sg.cleanedAtMs, this.lastRainCleanMs);
      sg.accumulated = Math.min(SOILING_MAX_LOSS, Math.max(0, ((o.soilingRatePctPerDay / 100) * (t - sg.sinceMs)) / 86400000));
      sg.ratio = (1 - sg.accumulated) * (1 - inv.faults.soiling);
      this.computeInverter(inv, poa, ambientC, wind);
      inv.hz = hz;
      inv.vPhase = vPhase;
      total += inv.acW;
    }
    // Nothing flows through an open breaker; the site's auxiliaries, fed from behind it, go on the UPS.
    this.meter.w = this.breakerClosed ? total - o.auxLoadW : 0;
    this.meter.hz = hz;
    this.meter.vPhase = vPhase;
    this.plantInputs[INPUT_BREAKER_CLOSED] = this.breakerClosed;
    this.plantInputs[INPUT_UPS_ON_BATTERY] = !this.breakerClosed;
    this.plantInputs.forEach((v, i) => (this.io.inputs[i] = this.inputOverrides.get(i) ?? v));
  }

  private computeInverter(inv: InverterState, poa: number, ambientC: number, wind: number): void {
    const f = inv.faults;
    const poaEff = poa * inv.soiling.ratio;
    const moduleC = moduleTemperature(poaEff, ambientC, wind);
    let dcAvail = 0;
    for (const s of inv.strings) {
      const op = pvString(s.stcW, this.o.vmpStc, poaEff, moduleC);
      const factor = f.stringFactor.get(s.index) ?? 1;
      s.v = op.v;
      s.a = op.a * factor;
      s.w = s.v * s.a;
      if (!s.closed) {
        // Its disconnect is open: no current, the string idles at open-circuit voltage.
        s.v = openCircuit(s.v);
        s.a = 0;
        s.w = 0;
      }
      dcAvail += s.w;
    }
    const groundFault = this.groundFaulted(inv);
    const events: string[] = [];
    const rated = inv.ratedW;
    const acAvail = inverterAc(dcAvail, rated);
    inv.connected = inv.controls.connected;
    inv.limitEnabled = inv.controls.limit.enabled;
    inv.limitPct = inv.controls.limit.pct;
    let cap = Math.min(rated, (rated * inv.controls.capPct(this.simMs)) / 100);
    // Over-temperature derating: the heat sink above 75 C halves the allowed output.
    const heatsinkAtFull = ambientC + 5 + (30 * Math.min(acAvail, cap)) / rated + f.overTempC;
    const overTemp = heatsinkAtFull > 75;
    if (overTemp) {
      cap = Math.min(cap, rated * 0.5);
      events.push('OVER_TEMP');
    }
    if (groundFault) events.push('GROUND_FAULT');
    if (!this.gridOk) events.push('GRID_DISCONNECT');
    let ac: number;
    let st: InverterStateName;
    if (groundFault || !this.gridOk || !inv.connected || acAvail <= 0) {
      ac = 0;
      st = groundFault ? 'FAULT' : !this.gridOk || !inv.connected ? 'STANDBY' : 'SLEEPING';
      // No current flows; the strings sit near open-circuit voltage while lit.
      for (const s of inv.strings) {
        if (s.closed) s.v = openCircuit(s.v);
        s.a = 0;
        s.w = 0;
      }
    } else {
      ac = Math.min(acAvail, cap);
      const limited = acAvail > cap + 1;
      // Clipping at the nameplate rating is normal MPPT-limited operation; a limit below it is THROTTLED.
      st = limited && cap < rated ? 'THROTTLED' : 'MPPT';
      if (limited) {
        // Off the maximum-power point: every string gives proportionally less.
        const k = dcAvail > 0 ? inverterDcFor(ac, rated) / dcAvail : 0;
        for (const s of inv.strings) {
          s.a *= k;
          s.w *= k;
        }
      }
    }
    inv.acW = ac;
    inv.dcW = inv.strings.reduce((n, s) => n + s.w, 0);
    inv.heatsinkC = ambientC + 5 + (30 * ac) / rated + f.overTempC;
    inv.cabinetC = ambientC + 3 + (10 * ac) / rated + f.overTempC / 2;
    inv.st = st;
    inv.events = events;
  }

  /**
   * Whether the inverter sees a ground fault: one inside it, or an insulation fault on a string
   * whose disconnect is closed. Isolating the faulty string clears it (the inverter's insulation
   * check passes again and it resumes at once: no grid-code reconnection delay is modelled).
   */
  groundFaulted(inv: InverterState): boolean {
    const f = inv.faults;
    return f.groundFault || [...f.groundFaultStrings].some((i) => inv.strings[i]?.closed === true);
  }

  /**
   * Insulation resistance of a string to ground, as a combiner box's insulation fault location
   * (IEC 61557-9) measures it: healthy arrays are in the megohms; a string with a ground fault is far
   * below the roughly 30 kilohm an inverter needs to start (Vmax / 30 mA, IEC 62109-2).
   */
  insulationKOhm(inv: InverterState, index: number): number {
    return inv.faults.groundFaultStrings.has(index) ? INSULATION_FAULT_KOHM : INSULATION_HEALTHY_KOHM;
  }

  /** Open or close a string's disconnect (a combiner box coil, or an operator on site). */
  setStringSwitch(inv: InverterState, index: number, closed: boolean): void {
    const s = inv.strings[index];
    if (s === undefined) throw new RangeError(`string ${index + 1} of inverter ${inv.index + 1} does not exist`);
    s.closed = closed;
    this.compute(0);
  }

  /** The irradiance reaching an inverter's cells: the clean reference cell's POA times its soiling ratio. */
  poaFor(inv: InverterState): number {
    return this.weather.poa * inv.soiling.ratio;
  }

  /** Module temperature of an inverter's strings (with its soiling). */
  moduleTempFor(inv: InverterState): number {
    return moduleTemperature(this.poaFor(inv), this.weather.ambientC, this.weather.windMs);
  }
}
