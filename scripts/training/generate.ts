/**
 * Labelled training data for MLInference's models, generated from the site simulator's physics.
 *
 * The plant model (scripts/simulator/plant.ts) is stepped directly, one simulated minute at a time
 * (no Modbus, no wall clock), for many simulated days with varied weather and injected faults. Each
 * day runs two plants in lockstep with identical options: the faulty one, whose telemetry is
 * recorded, and a clean twin, which tells whether an active fault changes anything a gateway could
 * see in that minute (a fault that changes nothing observable cannot be learned from, and is
 * labelled so: see docs/ml-models.md, "Labels").
 *
 * Telemetry is recorded as the gateway would read it: inverter points from the same SunSpec model
 * values the simulator serves (inverterModels, so with the registers' rounding), weather station and
 * tracker points rounded to their register map's resolution.
 *
 * Faults: the simulator's own kinds through applyFaults (string-fault, over-temperature, soiling,
 * ground-fault, tracker-stuck), the comm-loss kind as minutes without a sample, and two the
 * simulator does not have, modelled here: an inverter derate (the inverter caps its own output
 * with no command: carried out through its model 123 output limit, so the strings leave their
 * maximum-power point as the physics does for any limit) and a sensor drift (the inverter's heat
 * sink temperature sensor reads a growing offset; the physics is unchanged).
 *
 * Output (in --out): manifest.json (seeds, per-day weather, faults, split, column names) and
 * series.f32 (float32 little endian, [day][minute][column], NaN = no sample that minute).
 *
 *   node generate.js --out DIR [--days 300] [--seed 20251203]
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyFaults, type FaultSpec } from '../simulator/faults';
import { mulberry32 } from '../simulator/physics';
import { PLANT_DEFAULTS, Plant, type PlantOptions } from '../simulator/plant';
import { inverterModels } from '../simulator/sunspec-device';
import { clearSkyPoa } from './features';

export const GENERATOR_VERSION = 2;
export const MINUTES_PER_DAY = 1440;
const MINUTE_MS = 60000;

/** Fault classes of the classifier, in label order (0 = normal). */
export const FAULT_CLASSES = ['normal', 'string_fault', 'over_temperature', 'soiling', 'ground_fault', 'tracker_stuck', 'inverter_derate', 'sensor_drift', 'comm_dropout'] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];
const INVERTER_FAULTS: FaultClass[] = ['string_fault', 'over_temperature', 'soiling', 'ground_fault', 'inverter_derate', 'sensor_drift', 'comm_dropout'];

export const SITE_COLUMNS = ['ghi', 'poa', 'ambientTemp', 'wsModuleTemp', 'windSpeed', 'trackerActual', 'trackerTarget', 'sunElevation', 'clearSkyPoa'] as const;
/**
 * Per inverter. Telemetry: W, DCW, DCV, DCA, TmpSnk, TmpCab (model 103), Tmp and DCA of each MPPT
 * input (model 160), stFault (St == FAULT), evtOverTemp / evtGroundFault (Evt1 bits). Labels and
 * bookkeeping: missing (1 = no sample), faultClass (index in FAULT_CLASSES of the fault active
 * that minute), observable (1 = the fault changes what the gateway reads, against the clean twin),
 * trueW (W even when no sample reached the gateway).
 */
export function inverterColumns(strings: number): string[] {
  return ['W', 'DCW', 'DCV', 'DCA', 'TmpSnk', 'TmpCab', 'Tmp', ...Array.from({ length: strings }, (_, s) => `str${s + 1}DCA`), 'stFault', 'evtOverTemp', 'evtGroundFault', 'missing', 'faultClass', 'observable', 'trueW'];
}

export interface InjectedFault {
  /** Inverter index (0-based); tracker_stuck applies to every inverter. */
  inverter: number | 'all';
  kind: FaultClass;
  /** Minutes after 00:00 UTC of the day: active in [onsetMin, endMin). */
  onsetMin: number;
  endMin: number;
  params: Record<string, number>;
}

export interface DaySpec {
  index: number;
  seed: number;
  /** 00:00 UTC of the simulated date. */
  startMs: number;
  dayOfYear: number;
  regime: 'clear' | 'broken' | 'overcast';
  cloudiness: number;
  ambientMeanC: number;
  ambientSwingC: number;
  split: 'train' | 'validation' | 'test';
  faults: InjectedFault[];
}

export interface GenerateOptions {
  days: number;
  seed: number;
  plant?: Partial<PlantOptions>;
}

const YEAR = 2025;

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)];
}
function uniform(rnd: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * rnd();
}

/** The day plans: weather, split and faults, all from `seed` (the same seed gives the same data). */
export function planDays(o: GenerateOptions): DaySpec[] {
  const rnd = mulberry32(o.seed);
  const base = { ...PLANT_DEFAULTS, ...o.plant };
  // Split by whole days: a seeded shuffle, 70 / 15 / 15.
  const order = Array.from({ length: o.days }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const split = new Array<DaySpec['split']>(o.days);
  order.forEach((d, k) => (split[d] = k < Math.round(0.7 * o.days) ? 'train' : k < Math.round(0.85 * o.days) ? 'validation' : 'test'));
  const days: DaySpec[] = [];
  for (let index = 0; index < o.days; index++) {
    const dayOfYear = 1 + Math.floor(rnd() * 365);
    const r = rnd();
    const regime: DaySpec['regime'] = r < 0.3 ? 'clear' : r < 0.7 ? 'broken' : 'overcast';
    const cloudiness = regime === 'clear' ? uniform(rnd, 0, 0.1) : regime === 'broken' ? uniform(rnd, 0.2, 0.5) : uniform(rnd, 0.6, 0.95);
    // Seasons at the site's latitude: warmest late July, coldest late January.
    const ambientMeanC = 17 + 9 * Math.sin((2 * Math.PI * (dayOfYear - 105)) / 365) + uniform(rnd, -3, 3) - (regime === 'overcast' ? 2 : 0);
    const ambientSwingC = regime === 'overcast' ? uniform(rnd, 3, 6) : uniform(rnd, 5, 10);
    const faults: InjectedFault[] = [];
    // Onsets between 07:00 and 15:00 local solar time, lasting 2 to 8 hours.
    const solarOffsetMin = Math.round((-base.longitude / 15) * 60);
    const window = (): [number, number] => {
      const onset = solarOffsetMin + Math.floor(uniform(rnd, 7 * 60, 15 * 60));
      return [onset, Math.min(MINUTES_PER_DAY, onset + Math.floor(uniform(rnd, 120, 480)))];
    };
    if (rnd() < 0.15) {
      const [onsetMin, endMin] = window();
      faults.push({ inverter: 'all', kind: 'tracker_stuck', onsetMin, endMin, params: {} });
    } else {
      for (let inv = 0; inv < base.inverters; inv++) {
        if (rnd() >= 0.45) continue;
        const kind = pick(rnd, INVERTER_FAULTS);
        const [onsetMin, endMin] = window();
        const params: Record<string, number> = {};
        switch (kind) {
          case 'string_fault':
            params.string = 1 + Math.floor(rnd() * base.stringsPerInverter);
            params.factor = uniform(rnd, 0, 0.5);
            break;
          case 'over_temperature':
            params.deltaC = uniform(rnd, 35, 50);
            break;
          case 'soiling':
            params.loss = uniform(rnd, 0.15, 0.4);
            break;
          case 'ground_fault':
            // Half inside the inverter, half a string's insulation.
            params.string = rnd() < 0.5 ? 0 : 1 + Math.floor(rnd() * base.stringsPerInverter);
            break;
          case 'inverter_derate':
            params.limitPct = Math.round(uniform(rnd, 40, 80));
            break;
          case 'sensor_drift':
            params.ratePerHourC = uniform(rnd, 3, 8);
            params.maxC = uniform(rnd, 15, 30);
            break;
          case 'comm_dropout':
            // A two-state chain: the chance of losing the next minute, and of staying lost.
            params.enter = uniform(rnd, 0.15, 0.4);
            params.stay = uniform(rnd, 0.5, 0.8);
            break;
        }
        faults.push({ inverter: inv, kind, onsetMin, endMin, params });
      }
    }
    days.push({
      index,
      seed: (o.seed * 7919 + index * 104729) >>> 0,
      startMs: Date.UTC(YEAR, 0, 1) + (dayOfYear - 1) * 86400000,
      dayOfYear,
      regime,
      cloudiness,
      ambientMeanC,
      ambientSwingC,
      split: split[index],
      faults,
    });
  }
  return days;
}

function round(v: number, digits: number): number {
  const k = 10 ** digits;
  return Math.round(v * k) / k;
}

/** The simulator's fault specs for the faults active at `minute` (those the simulator models). */
function simFaults(day: DaySpec, minute: number): FaultSpec[] {
  const specs: FaultSpec[] = [];
  for (const f of day.faults) {
    if (minute < f.onsetMin || minute >= f.endMin) continue;
    const unit = typeof f.inverter === 'number' ? f.inverter + 1 : 0;
    if (f.kind === 'string_fault') specs.push({ kind: 'string-fault', unit, string: f.params.string, factor: f.params.factor });
    else if (f.kind === 'over_temperature') specs.push({ kind: 'over-temperature', unit, deltaC: f.params.deltaC });
    else if (f.kind === 'soiling') specs.push({ kind: 'soiling', unit, loss: f.params.loss });
    else if (f.kind === 'ground_fault') specs.push(f.params.string > 0 ? { kind: 'ground-fault', unit, string: f.params.string } : { kind: 'ground-fault', unit });
    else if (f.kind === 'tracker_stuck') specs.push({ kind: 'tracker-stuck' });
  }
  return specs;
}

interface InverterReading {
  values: number[];
  st: string;
  evt: string;
}

function readInverter(plant: Plant, i: number): InverterReading {
  const inv = plant.inverters[i];
  const models = inverterModels(plant, inv, i + 1, `INV-0${i + 1}`);
  const p103 = models.find((m) => m.id === 103)!.values.points as Record<string, number | string | null>;
  const m160 = models.find((m) => m.id === 160)!.values.groups!.module as Array<Record<string, number | string>>;
  const evt = String(p103.Evt1);
  return {
    values: [p103.W, p103.DCW, p103.DCV, p103.DCA, p103.TmpSnk, p103.TmpCab, m160[0].Tmp, ...m160.map((m) => m.DCA)] as number[],
    st: String(p103.St),
    evt,
  };
}

/** Simulate one day; returns [minute][column] in a flat Float32Array. */
export function simulateDay(day: DaySpec, plantOpts: Partial<PlantOptions> = {}): Float32Array {
  const opts: Partial<PlantOptions> = { ...plantOpts, seed: day.seed, cloudiness: day.cloudiness, ambientMeanC: day.ambientMeanC, ambientSwingC: day.ambientSwingC };
  const faulty = new Plant(opts, day.startMs);
  const clean = new Plant(opts, day.startMs);
  const o = faulty.o;
  const invCols = inverterColumns(o.stringsPerInverter).length;
  const cols = SITE_COLUMNS.length + o.inverters * invCols;
  const out = new Float32Array(MINUTES_PER_DAY * cols);
  const rnd = mulberry32(day.seed ^ 0x5bd1e995);
  let activeKey = '';
  const lost = new Array<boolean>(o.inverters).fill(false);
  for (let m = 0; m < MINUTES_PER_DAY; m++) {
    const t = day.startMs + m * MINUTE_MS;
    const specs = simFaults(day, m);
    const derates = day.faults.filter((f) => f.kind === 'inverter_derate' && m >= f.onsetMin && m < f.endMin);
    const key = JSON.stringify([specs, derates.map((f) => f.inverter)]);
    if (key !== activeKey) {
      activeKey = key;
      applyFaults(faulty, new Map(), specs);
      for (const inv of faulty.inverters) {
        const d = derates.find((f) => f.inverter === inv.index);
        faulty.writeControls(inv, d ? { WMaxLimPct: d.params.limitPct, WMaxLim_Ena: 1 } : { WMaxLim_Ena: 0 });
      }
    }
    faulty.advanceTo(t);
    clean.advanceTo(t);
    const row = m * cols;
    const w = faulty.weather;
    const site = [
      Math.round(w.ghi),
      Math.round(w.poa),
      round(w.ambientC, 1),
      round(w.moduleC, 1),
      round(w.windMs, 2),
      round(faulty.tracker.actualDeg, 1),
      round(faulty.tracker.targetDeg, 1),
      w.sunElevationDeg,
      clearSkyPoa(t, o.latitude, o.longitude, o.trackerLimitDeg),
    ];
    site.forEach((v, k) => (out[row + k] = v));
    const trackerOff = Math.abs(faulty.tracker.actualDeg - clean.tracker.actualDeg) >= 2;
    for (let i = 0; i < o.inverters; i++) {
      const f = day.faults.find((x) => (x.inverter === i || x.inverter === 'all') && m >= x.onsetMin && m < x.endMin);
      const a = readInverter(faulty, i);
      const b = readInverter(clean, i);
      if (f?.kind === 'sensor_drift') {
        const offset = Math.min(f.params.maxC, (f.params.ratePerHourC * (m - f.onsetMin)) / 60);
        a.values[4] = round(a.values[4] + offset, 1);
      }
      // Communication: rare single lost polls in normal operation, bursts during a dropout.
      if (f?.kind === 'comm_dropout') lost[i] = rnd() < (lost[i] ? f.params.stay : f.params.enter);
      else lost[i] = rnd() < 0.002;
      const missing = lost[i];
      let observable = false;
      if (f !== undefined) {
        const rated = faulty.inverters[i].ratedW;
        observable =
          missing && f.kind === 'comm_dropout'
            ? true
            : Math.abs(a.values[0] - b.values[0]) > 0.03 * rated ||
              a.values.slice(7).some((v, k) => Math.abs(v - b.values[7 + k]) > 1) ||
              Math.abs(a.values[4] - b.values[4]) >= 2 ||
              a.st !== b.st ||
              a.evt !== b.evt ||
              (f.kind === 'tracker_stuck' && trackerOff);
      }
      const base = row + SITE_COLUMNS.length + i * invCols;
      const vals = [
        ...a.values,
        a.st === 'FAULT' ? 1 : 0,
        a.evt.split('|').includes('OVER_TEMP') ? 1 : 0,
        a.evt.split('|').includes('GROUND_FAULT') ? 1 : 0,
      ];
      vals.forEach((v, k) => (out[base + k] = missing ? NaN : v));
      const n = vals.length;
      out[base + n] = missing ? 1 : 0;
      out[base + n + 1] = f === undefined ? 0 : FAULT_CLASSES.indexOf(f.kind);
      out[base + n + 2] = observable ? 1 : 0;
      out[base + n + 3] = a.values[0];
    }
  }
  return out;
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    fs.createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

export async function generate(outDir: string, o: GenerateOptions): Promise<{ manifest: string; series: string }> {
  fs.mkdirSync(outDir, { recursive: true });
  const plantOpts = { ...PLANT_DEFAULTS, ...o.plant };
  const days = planDays(o);
  const seriesPath = path.join(outDir, 'series.f32');
  const fd = fs.openSync(seriesPath, 'w');
  const t0 = Date.now();
  for (const d of days) {
    const a = simulateDay(d, plantOpts);
    fs.writeSync(fd, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  }
  fs.closeSync(fd);
  const manifest = {
    generatorVersion: GENERATOR_VERSION,
    seed: o.seed,
    days: o.days,
    minutesPerDay: MINUTES_PER_DAY,
    plant: plantOpts,
    faultClasses: FAULT_CLASSES,
    siteColumns: SITE_COLUMNS,
    inverterColumns: inverterColumns(plantOpts.stringsPerInverter),
    sha256: await sha256File(seriesPath),
    generateSeconds: (Date.now() - t0) / 1000,
    dayPlans: days,
  };
  const manifestPath = path.join(outDir, 'manifest.json');
  fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 1));
  return { manifest: manifestPath, series: seriesPath };
}

function argValue(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const out = argValue(argv, '--out', '');
  if (out === '') {
    process.stderr.write('usage: generate --out DIR [--days N] [--seed S]\n');
    process.exit(2);
  }
  const days = Number(argValue(argv, '--days', '300'));
  const seed = Number(argValue(argv, '--seed', '20251203'));
  if (!Number.isInteger(days) || days < 10 || !Number.isInteger(seed) || seed < 0) {
    process.stderr.write('--days is an integer >= 10, --seed a non-negative integer\n');
    process.exit(2);
  }
  generate(out, { days, seed }).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: unknown) => {
      process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
      process.exit(1);
    },
  );
}
