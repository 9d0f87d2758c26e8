/**
 * IV curves of PV strings: the single-diode model (forward, for the site simulator and for the
 * curve a string is expected to give) and, below, the analysis of a measured curve. Pure functions,
 * no I/O: the Analytics component and the simulator both call them.
 *
 * The model (De Soto, Klein and Beckman 2006, "Improvement and validation of a model for
 * photovoltaic array performance", Solar Energy 80):
 *
 *   I = IL - I0 (exp((V + I Rs) / a) - 1) - (V + I Rs) / Rsh,   a = n Ns k T / q
 *
 * solved explicitly with the Lambert W function (Jain and Kapoor 2004), never by iterating the
 * implicit equation: V(I) = (IL + I0 - I) Rsh - I Rs - a W((I0 Rsh / a) exp((IL + I0 - I) Rsh / a)),
 * and I(V) likewise. W is evaluated as W(e^x) in log space, since the argument of a string of
 * a thousand cells overflows a double long before W does.
 *
 * Conditions move the reference parameters as De Soto et al. do: IL with irradiance and the Isc
 * temperature coefficient, I0 with T^3 and the band gap (silicon, 1.121 eV, -0.0002677 /K), a with
 * T, Rsh inversely with irradiance, Rs constant.
 *
 * A string is a series of substrings (the cells one bypass diode protects): each substring group
 * has its own parameters (a shaded group has less light), a substring's voltage is clamped at the
 * bypass diode's forward drop once its current would drive it into reverse, and the string's
 * voltage at a current is the sum. That is what makes the step ("knee") of a partly shaded string.
 */

/** Boltzmann constant over the elementary charge (V/K). */
const K_OVER_Q = 8.617333262e-5;
const T_REF_K = 298.15;
const EG_REF_EV = 1.121;
const DEG_DT = -0.0002677;
export const G_REF = 1000;

/** One single-diode equivalent circuit at given conditions (A, A, ohm, ohm, V). */
export interface SingleDiode {
  /** Light-generated current. */
  il: number;
  /** Diode saturation current. */
  i0: number;
  /** Series resistance. */
  rs: number;
  /** Shunt resistance (Infinity: none). */
  rsh: number;
  /** Modified ideality factor n Ns k T / q (V). */
  a: number;
}

/** Reference (STC: 1000 W/m2, 25 C) parameters and the Isc temperature coefficient (A/K). */
export interface ReferenceDiode extends SingleDiode {
  alphaIsc: number;
}

/** W(e^x), the principal branch of Lambert W at e^x, for any real x (Newton on w + ln w = x). */
export function lambertWExp(x: number): number {
  if (x < -40) return Math.exp(x);
  let w = x > 1 ? x - Math.log(x) : Math.exp(x) / (1 + Math.exp(x));
  for (let k = 0; k < 60; k++) {
    const next = (w * (1 + x - Math.log(w))) / (1 + w);
    if (Math.abs(next - w) <= 1e-15 * Math.max(1, Math.abs(next))) return next;
    w = next;
  }
  return w;
}

/** Voltage at current `i` (explicit, Lambert W). */
export function voltageAt(p: SingleDiode, i: number): number {
  if (!Number.isFinite(p.rsh)) {
    const arg = (p.il - i) / p.i0 + 1;
    return arg > 0 ? p.a * Math.log(arg) - i * p.rs : Number.NEGATIVE_INFINITY;
  }
  const x = Math.log((p.i0 * p.rsh) / p.a) + ((p.il + p.i0 - i) * p.rsh) / p.a;
  return (p.il + p.i0 - i) * p.rsh - i * p.rs - p.a * lambertWExp(x);
}

/** Current at voltage `v` (explicit, Lambert W). */
export function currentAt(p: SingleDiode, v: number): number {
  const rsh = Number.isFinite(p.rsh) ? p.rsh : 1e15;
  if (p.rs <= 0) return p.il - p.i0 * (Math.exp(v / p.a) - 1) - v / rsh;
  const x = Math.log((p.rs * rsh * p.i0) / (p.a * (p.rs + rsh))) + (rsh * (p.rs * (p.il + p.i0) + v)) / (p.a * (p.rs + rsh));
  return (rsh * (p.il + p.i0) - v) / (p.rs + rsh) - (p.a / p.rs) * lambertWExp(x);
}

/** The parameters at plane-of-array irradiance `g` (W/m2) and cell temperature `tc` (C). */
export function atConditions(ref: ReferenceDiode, g: number, tc: number): SingleDiode {
  const tk = tc + 273.15;
  const eg = EG_REF_EV * (1 + DEG_DT * (tk - T_REF_K));
  const s = Math.max(g, 0) / G_REF;
  return {
    il: s * (ref.il + ref.alphaIsc * (tc - 25)),
    i0: ref.i0 * (tk / T_REF_K) ** 3 * Math.exp(EG_REF_EV / (K_OVER_Q * T_REF_K) - eg / (K_OVER_Q * tk)),
    rs: ref.rs,
    rsh: s > 0 ? ref.rsh / s : Number.POSITIVE_INFINITY,
    a: (ref.a * tk) / T_REF_K,
  };
}

/** A run of identical substrings in series. */
export interface SubstringGroup {
  params: SingleDiode;
  count: number;
}

/** A string (or several identical strings in parallel, as one MPPT input), substrings in series. */
export interface StringCircuit {
  groups: SubstringGroup[];
  /** Forward drop of a bypass diode (V); 0 or absent: no bypass diodes. */
  bypassV?: number;
}

/** The string's voltage at current `i`. */
export function stringVoltageAt(c: StringCircuit, i: number): number {
  let v = 0;
  for (const g of c.groups) {
    const vs = voltageAt(g.params, i);
    v += g.count * (c.bypassV ? Math.max(vs, -c.bypassV) : vs);
  }
  return v;
}

/** Short-circuit current of a string: V(I) = 0, by bisection (V falls with I). */
export function stringIsc(c: StringCircuit): number {
  let lo = 0;
  let hi = Math.max(1e-9, ...c.groups.map((g) => g.params.il)) * 1.5 + 1e-6;
  if (stringVoltageAt(c, lo) <= 0) return 0;
  while (stringVoltageAt(c, hi) > 0) hi *= 2;
  for (let k = 0; k < 80; k++) {
    const mid = (lo + hi) / 2;
    if (stringVoltageAt(c, mid) > 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** A measured or modelled curve: voltage ascending from about 0 to about Voc, current at each. */
export interface IvCurve {
  v: number[];
  i: number[];
}

/**
 * `n` points of the string's curve from short circuit to open circuit, spaced evenly along the
 * curve's length in normalised coordinates (V/Voc, I/Isc), as an adaptive IV tracer spaces them:
 * the flat part near Isc and the steep part near Voc both get points, not only the knee. Each
 * point lies exactly on the curve (its voltage is computed from its current).
 */
export function stringCurve(c: StringCircuit, n: number): IvCurve {
  const isc = stringIsc(c);
  const voc = stringVoltageAt(c, 0);
  if (!(isc > 0) || !(voc > 0)) return { v: Array.from({ length: n }, () => 0), i: Array.from({ length: n }, () => 0) };
  const m = 4000;
  const is: number[] = [];
  const vs: number[] = [];
  for (let k = 0; k <= m; k++) {
    const i = isc * (1 - k / m);
    is.push(i);
    vs.push(k === 0 ? 0 : k === m ? voc : stringVoltageAt(c, i));
  }
  const len = [0];
  for (let k = 1; k <= m; k++) len.push(len[k - 1] + Math.hypot((vs[k] - vs[k - 1]) / voc, (is[k] - is[k - 1]) / isc));
  const total = len[m];
  const v: number[] = [];
  const i: number[] = [];
  let k = 0;
  for (let j = 0; j < n; j++) {
    const target = (total * j) / (n - 1);
    while (k < m - 1 && len[k + 1] < target) k++;
    const f = len[k + 1] > len[k] ? Math.min(1, Math.max(0, (target - len[k]) / (len[k + 1] - len[k]))) : 0;
    const cur = j === 0 ? isc : j === n - 1 ? 0 : is[k] + f * (is[k + 1] - is[k]);
    i.push(cur);
    v.push(j === 0 ? 0 : j === n - 1 ? voc : Math.max(0, stringVoltageAt(c, cur)));
  }
  return { v, i };
}

/** Maximum power point of a single-diode circuit (golden-section search on P(V) in 0..Voc). */
export function maxPowerPoint(p: SingleDiode): { v: number; i: number; p: number } {
  const voc = voltageAt(p, 0);
  let lo = 0;
  let hi = voc;
  const r = (Math.sqrt(5) - 1) / 2;
  const pw = (v: number): number => v * currentAt(p, v);
  for (let k = 0; k < 100 && hi - lo > 1e-9 * voc; k++) {
    const a = hi - r * (hi - lo);
    const b = lo + r * (hi - lo);
    if (pw(a) < pw(b)) lo = a;
    else hi = b;
  }
  const v = (lo + hi) / 2;
  const i = currentAt(p, v);
  return { v, i, p: v * i };
}

/** What a module datasheet gives at STC (1000 W/m2, 25 C, AM1.5). */
export interface ModuleDatasheet {
  iscA: number;
  vocV: number;
  impA: number;
  vmpV: number;
  /** Cells in series in the module. */
  cellsInSeries: number;
  /** Isc temperature coefficient, %/K (positive, about 0.05). */
  alphaIscPctPerK: number;
  /** Voc temperature coefficient, %/K (negative, about -0.3); fits the diode ideality when given. */
  betaVocPctPerK?: number;
  /** Diode ideality factor when betaVocPctPerK is not given (default 1.1). */
  idealityFactor?: number;
  /** Bypass diodes per module (default 3). */
  bypassDiodes?: number;
}

export class IvModelError extends Error {
  readonly code = 'IV_MODEL';
}

/** IL and I0 that put the curve through (0, Isc) and (Voc, 0) for given Rs, Rsh and a. */
function throughEnds(isc: number, voc: number, rs: number, rsh: number, a: number): { il: number; i0: number } {
  const i0 = (isc - (voc - isc * rs) / rsh) / (Math.exp(voc / a) - Math.exp((isc * rs) / a));
  return { il: i0 * (Math.exp(voc / a) - 1) + voc / rsh, i0 };
}

/**
 * Reference parameters for a given modified ideality `a`: Rs and Rsh by Newton's method on the two
 * maximum-power conditions (the curve passes through (Vmp, Imp), and dP/dV = 0 there), IL and I0
 * from the short- and open-circuit points. Throws when the datasheet admits no positive Rs, Rsh.
 */
function fitForA(ds: ModuleDatasheet, a: number): SingleDiode {
  const { iscA: isc, vocV: voc, impA: imp, vmpV: vmp } = ds;
  const params = (rs: number, lnRsh: number): SingleDiode => ({ ...throughEnds(isc, voc, rs, Math.exp(lnRsh), a), rs, rsh: Math.exp(lnRsh), a });
  const residual = (rs: number, lnRsh: number): [number, number] => {
    const p = params(rs, lnRsh);
    const e = (p.i0 / a) * Math.exp((vmp + imp * rs) / a);
    const g = e + 1 / p.rsh;
    const didv = -g / (1 + rs * g);
    return [(currentAt(p, vmp) - imp) / isc, (imp + vmp * didv) / isc];
  };
  let rs = (0.05 * voc) / isc;
  let lnRsh = Math.log((20 * voc) / isc);
  for (let k = 0; k < 200; k++) {
    const [f1, f2] = residual(rs, lnRsh);
    if (Math.abs(f1) < 1e-12 && Math.abs(f2) < 1e-12) break;
    const h1 = 1e-7 * Math.max(rs, 1e-3);
    const h2 = 1e-7;
    const [a1, a2] = residual(rs + h1, lnRsh);
    const [b1, b2] = residual(rs, lnRsh + h2);
    const j11 = (a1 - f1) / h1;
    const j21 = (a2 - f2) / h1;
    const j12 = (b1 - f1) / h2;
    const j22 = (b2 - f2) / h2;
    const det = j11 * j22 - j12 * j21;
    if (!Number.isFinite(det) || det === 0) break;
    let d1 = (f1 * j22 - f2 * j12) / det;
    let d2 = (j11 * f2 - j21 * f1) / det;
    // Damped: keep Rs positive and move ln Rsh by at most 1 a step.
    const s = Math.min(1, d1 > 0 ? (0.9 * rs) / d1 : 1, 1 / Math.max(1e-12, Math.abs(d2)));
    d1 *= s;
    d2 *= s;
    rs -= d1;
    lnRsh -= d2;
  }
  const [f1, f2] = residual(rs, lnRsh);
  const p = params(rs, lnRsh);
  if (!(Math.abs(f1) < 1e-6 && Math.abs(f2) < 1e-6) || !(rs > 0) || !(p.rsh > 0) || !(p.i0 > 0) || !(p.il > 0)) {
    throw new IvModelError(`no single-diode fit for this datasheet with a = ${a.toFixed(4)} V (Rs ${rs.toFixed(4)}, Rsh ${p.rsh.toFixed(1)})`);
  }
  return p;
}

/**
 * A module's reference single-diode parameters from its datasheet (Isc, Voc, Imp, Vmp and the
 * temperature coefficients), the five conditions De Soto et al. use: the three points of the
 * curve, dP/dV = 0 at the maximum-power point, and, when the datasheet gives it, the Voc
 * temperature coefficient (which fixes the ideality factor, by bisection); otherwise the ideality
 * factor is taken as given (default 1.1).
 */
export function fitModule(ds: ModuleDatasheet): ReferenceDiode & { idealityFactor: number } {
  const alphaIsc = (ds.alphaIscPctPerK / 100) * ds.iscA;
  const vth = ds.cellsInSeries * K_OVER_Q * T_REF_K;
  const withN = (n: number): ReferenceDiode => ({ ...fitForA(ds, n * vth), alphaIsc });
  if (ds.betaVocPctPerK === undefined) {
    const n = ds.idealityFactor ?? 1.1;
    return { ...withN(n), idealityFactor: n };
  }
  const target = (ds.betaVocPctPerK / 100) * ds.vocV;
  const slope = (n: number): number => {
    const ref = withN(n);
    return (voltageAt(atConditions(ref, G_REF, 26), 0) - voltageAt(atConditions(ref, G_REF, 24), 0)) / 2;
  };
  // A larger ideality factor makes Voc fall faster with temperature; search where the fit exists.
  const ok = (n: number): boolean => {
    try {
      withN(n);
      return true;
    } catch {
      return false;
    }
  };
  let lo = 0.7;
  let hi = 2.5;
  while (!ok(lo) && lo < hi) lo += 0.05;
  while (!ok(hi) && hi > lo) hi -= 0.05;
  if (!(hi > lo)) throw new IvModelError('no single-diode fit for this datasheet at any ideality factor 0.7..2.5');
  const sLo = slope(lo);
  const sHi = slope(hi);
  if ((sLo - target) * (sHi - target) > 0) {
    const n = Math.abs(sLo - target) < Math.abs(sHi - target) ? lo : hi;
    return { ...withN(n), idealityFactor: n };
  }
  for (let k = 0; k < 50; k++) {
    const mid = (lo + hi) / 2;
    if ((slope(mid) - target) * (sLo - target) > 0) lo = mid;
    else hi = mid;
  }
  const n = (lo + hi) / 2;
  return { ...withN(n), idealityFactor: n };
}

/** How the modules of one string (MPPT input) are wired. */
export interface StringLayout {
  modulesInSeries: number;
  /** Identical series strings in parallel on the input (default 1). */
  stringsInParallel?: number;
}

/** One module's reference parameters scaled to a substring of a string: 1/bypass of a module, currents x parallel strings. */
export function substringReference(module: ReferenceDiode, bypassDiodes: number, parallel: number): ReferenceDiode {
  return { il: module.il * parallel, i0: module.i0 * parallel, rs: module.rs / bypassDiodes / parallel, rsh: module.rsh / bypassDiodes / parallel, a: module.a / bypassDiodes, alphaIsc: module.alphaIsc * parallel };
}

/** Forward drop of a Schottky bypass diode at string current (V). */
export const BYPASS_DIODE_V = 0.5;

/** The healthy string at irradiance `g` and cell temperature `tc`: every substring alike. */
export function uniformString(module: ReferenceDiode, layout: StringLayout, bypassDiodes: number, g: number, tc: number): StringCircuit {
  const sub = substringReference(module, bypassDiodes, layout.stringsInParallel ?? 1);
  return { groups: [{ params: atConditions(sub, g, tc), count: layout.modulesInSeries * bypassDiodes }], bypassV: BYPASS_DIODE_V };
}

// ---------------------------------------------------------------------------------------------
// Analysis of a measured curve.

/** A string's modules and wiring: what its expected curve is computed from (per string in configuration). */
export interface IvStringConfig {
  module: ModuleDatasheet;
  layout: StringLayout;
}

/** Figures of one curve. Resistances in ohm; `rsOhm` needs the diode's `a` (the expected model's), else it is null. */
export interface IvFeatures {
  iscA: number;
  vocV: number;
  impA: number;
  vmpV: number;
  pmpW: number;
  fillFactor: number;
  /** -dV/dI near open circuit: series resistance plus the diode's own dynamic resistance there. */
  rocOhm: number;
  /** -dV/dI near short circuit: shunt resistance plus series resistance. */
  rscOhm: number;
  /** Series resistance: the slope near Voc with the diode's part taken out (needs `a`). */
  rsOhm: number | null;
  /** Shunt resistance: rscOhm - rsOhm (rscOhm without rsOhm). */
  rshOhm: number;
  /** Knees found below the main one: a bypass diode conducting (mismatch, partial shading). */
  steps: number;
}

export const IV_CLASSES = ['normal', 'mismatch', 'high_series_resistance', 'low_shunt_resistance', 'degradation', 'soiling', 'unclassified'] as const;
export type IvClass = (typeof IV_CLASSES)[number];

/** Decision thresholds (ratios are measured / expected at the measured irradiance and temperature). */
export interface IvThresholds {
  /** Shunt resistance ratio below this: low shunt resistance. */
  rshRatioLow: number;
  /** Series resistance ratio above this: high series resistance. */
  rsRatioHigh: number;
  /** Isc ratio below this: current lost (soiling or degradation). */
  iscRatioLow: number;
  /** Voc ratio below this (with current lost): degradation rather than soiling. */
  vocRatioLow: number;
  /** Fill factor ratio at least this: the shape is normal. */
  fillFactorRatioNormal: number;
  /** Pmp ratio at least this (and nothing else found): normal. */
  pmpRatioNormal: number;
  /** Normalised slope (dI/dV x Voc/Isc) steeper than this is a knee, flatter than `flatSlope` a plateau. */
  steepSlope: number;
  flatSlope: number;
}

export const IV_THRESHOLDS: IvThresholds = {
  rshRatioLow: 0.3,
  rsRatioHigh: 2,
  iscRatioLow: 0.95,
  vocRatioLow: 0.97,
  fillFactorRatioNormal: 0.95,
  pmpRatioNormal: 0.93,
  steepSlope: -1.5,
  flatSlope: -0.3,
};

export interface IvAnalysis {
  classification: IvClass;
  /** Why, in words, with the figures that decided. */
  reasons: string[];
  measured: IvFeatures;
  /** The healthy string's figures at the measured irradiance and temperature. */
  expected: IvFeatures;
  /** measured / expected. */
  ratios: { isc: number; voc: number; imp: number; vmp: number; pmp: number; fillFactor: number; rs: number | null; rsh: number };
  irradiance: number;
  temperature: number;
}

/** A curve that cannot be analysed (too few points, not numbers, no current or voltage). */
export class IvCurveError extends Error {
  readonly code = 'IV_CURVE_INVALID';
}

/** Least squares y = c0 + c1 x. */
function lineFit(xs: number[], ys: number[]): { c0: number; c1: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (let k = 0; k < n; k++) {
    sxx += (xs[k] - mx) ** 2;
    sxy += (xs[k] - mx) * (ys[k] - my);
  }
  const c1 = sxx > 0 ? sxy / sxx : 0;
  return { c0: my - c1 * mx, c1 };
}

/** The points sorted by voltage, checked. */
function cleanCurve(curve: IvCurve): { v: number[]; i: number[] } {
  const { v, i } = curve;
  if (!Array.isArray(v) || !Array.isArray(i) || v.length !== i.length) throw new IvCurveError('v and i must be arrays of the same length');
  if (v.length < 10) throw new IvCurveError(`a curve needs at least 10 points (got ${v.length})`);
  const pts = v.map((x, k) => [x, i[k]] as const);
  if (pts.some(([a, b]) => typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b))) throw new IvCurveError('every point must be two finite numbers');
  pts.sort((p, q) => p[0] - q[0] || q[1] - p[1]);
  const vs = pts.map((p) => p[0]);
  const is = pts.map((p) => p[1]);
  if (!(Math.max(...is) > 0) || !(vs[vs.length - 1] > 0)) throw new IvCurveError('the curve has no current or no voltage (a string in the dark, or disconnected)');
  return { v: vs, i: is };
}

/**
 * Isc, Voc, the maximum-power point, fill factor, the slopes at both ends, Rs and Rsh, and the
 * knees. `a` (the diode's modified ideality at the curve's temperature, from the expected model)
 * lets the series resistance be separated from the diode's dynamic resistance near Voc: with
 * x = ln(Isc - I - V / Rsh), the single-diode equation gives V = c + a x - Rs I, fitted over the
 * points between the maximum-power point and Voc.
 */
export function ivFeatures(curve: IvCurve, opts: { a?: number; thresholds?: Partial<IvThresholds> } = {}): IvFeatures {
  const th = { ...IV_THRESHOLDS, ...opts.thresholds };
  const { v, i } = cleanCurve(curve);
  const n = v.length;
  // Voc: where the current reaches 0 (interpolated, or extrapolated from the last two points).
  let vocV = v[n - 1];
  const z = i.findIndex((x) => x <= 0);
  if (z > 0) vocV = v[z - 1] + ((v[z] - v[z - 1]) * i[z - 1]) / (i[z - 1] - i[z] || 1);
  else if (z === -1 && i[n - 1] !== i[n - 2]) vocV = v[n - 1] + (i[n - 1] * (v[n - 1] - v[n - 2])) / (i[n - 2] - i[n - 1]);
  // Near short circuit: a line through the points below 40 % of Voc (at least the first three).
  const low = v.map((_x, k) => k).filter((k) => v[k] <= 0.4 * vocV);
  const lowK = low.length >= 3 ? low : [0, 1, 2];
  const sc = lineFit(lowK.map((k) => v[k]), lowK.map((k) => i[k]));
  const iscA = sc.c0;
  const rscOhm = sc.c1 < 0 ? -1 / sc.c1 : Number.POSITIVE_INFINITY;
  // Near open circuit: the points below 8 % of Isc (at least the last three with current).
  const lit = i.map((_x, k) => k).filter((k) => i[k] >= 0);
  const high = lit.filter((k) => i[k] <= 0.08 * iscA);
  const highK = high.length >= 3 ? high : lit.slice(-3);
  const oc = lineFit(highK.map((k) => i[k]), highK.map((k) => v[k]));
  const rocOhm = -oc.c1;
  // Maximum power: the best point, refined by a parabola through it and its neighbours.
  const p = v.map((x, k) => x * i[k]);
  const m = p.indexOf(Math.max(...p));
  let vmpV = v[m];
  let pmpW = p[m];
  if (m > 0 && m < n - 1) {
    const [x0, x1, x2] = [v[m - 1], v[m], v[m + 1]];
    const [y0, y1, y2] = [p[m - 1], p[m], p[m + 1]];
    const den = (x0 - x1) * (x0 - x2) * (x1 - x2);
    const A = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den;
    const B = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / den;
    const C = (x1 * x2 * (x1 - x2) * y0 + x2 * x0 * (x2 - x0) * y1 + x0 * x1 * (x0 - x1) * y2) / den;
    if (A < 0) {
      const xv = -B / (2 * A);
      if (xv > x0 && xv < x2) {
        vmpV = xv;
        pmpW = A * xv * xv + B * xv + C;
      }
    }
  }
  const impA = vmpV > 0 ? pmpW / vmpV : 0;
  // Knees: a steep stretch followed, at a lower current, by a plateau again (a bypass diode took over).
  let steps = 0;
  let steep = false;
  let flatRun = 0;
  for (let k = 1; k < n; k++) {
    const dx = (v[k] - v[k - 1]) / vocV;
    if (dx <= 0) continue;
    const s = ((i[k] - i[k - 1]) / iscA) / dx;
    const y = i[k] / iscA;
    if (s < th.steepSlope) {
      steep = true;
      flatRun = 0;
    } else if (steep && s > th.flatSlope && y > 0.03 && y < 0.97) {
      flatRun += 1;
      if (flatRun === 2) {
        steps += 1;
        steep = false;
        flatRun = 0;
      }
    } else flatRun = 0;
  }
  let rsOhm: number | null = null;
  if (opts.a !== undefined && opts.a > 0) {
    const rshGuess = Number.isFinite(rscOhm) ? rscOhm : 1e9;
    const ks = v.map((_x, k) => k).filter((k) => v[k] >= vmpV && i[k] > 0.02 * iscA && iscA - i[k] - v[k] / rshGuess > 0);
    if (ks.length >= 3) {
      const fit = lineFit(ks.map((k) => i[k]), ks.map((k) => v[k] - opts.a! * Math.log(iscA - i[k] - v[k] / rshGuess)));
      rsOhm = Math.max(0, -fit.c1);
    }
  }
  const rshOhm = Math.max(0, rscOhm - (rsOhm ?? 0));
  return { iscA, vocV, impA, vmpV, pmpW, fillFactor: iscA > 0 && vocV > 0 ? pmpW / (iscA * vocV) : 0, rocOhm, rscOhm, rsOhm, rshOhm, steps };
}

/** Features of a modelled (uniform) string: exact, from the circuit. */
function modelFeatures(c: StringCircuit): IvFeatures {
  const g = c.groups[0];
  const nsub = c.groups.reduce((k, x) => k + x.count, 0);
  const whole: SingleDiode = { il: g.params.il, i0: g.params.i0, rs: g.params.rs * nsub, rsh: g.params.rsh * nsub, a: g.params.a * nsub };
  const iscA = currentAt(whole, 0);
  const vocV = voltageAt(whole, 0);
  const mpp = maxPowerPoint(whole);
  const e = (whole.i0 / whole.a) * Math.exp(vocV / whole.a);
  return {
    iscA,
    vocV,
    impA: mpp.i,
    vmpV: mpp.v,
    pmpW: mpp.p,
    fillFactor: mpp.p / (iscA * vocV),
    rocOhm: whole.rs + 1 / (e + 1 / whole.rsh),
    rscOhm: whole.rsh + whole.rs,
    rsOhm: whole.rs,
    rshOhm: whole.rsh,
    steps: 0,
  };
}

/** The reference diode of a module, fitted once per datasheet object. */
const fitted = new WeakMap<ModuleDatasheet, ReferenceDiode>();
function moduleReference(ds: ModuleDatasheet): ReferenceDiode {
  let ref = fitted.get(ds);
  if (!ref) {
    ref = fitModule(ds);
    fitted.set(ds, ref);
  }
  return ref;
}

/** The healthy string's circuit at irradiance `g` (W/m2) and cell temperature `tc` (C). */
export function expectedCircuit(cfg: IvStringConfig, g: number, tc: number): StringCircuit {
  return uniformString(moduleReference(cfg.module), cfg.layout, cfg.module.bypassDiodes ?? 3, g, tc);
}

/**
 * Analyse a measured curve against the healthy string at the measured irradiance and cell
 * temperature. Classes, first that applies:
 * - `mismatch`: a knee below the main one (bypass diodes conducting: partial shading, a broken
 *   cell, modules of different currents);
 * - `low_shunt_resistance`: Rsh below rshRatioLow of expected (slope near Isc);
 * - `high_series_resistance`: Rs above rsRatioHigh of expected (slope near Voc, diode part out);
 * - `degradation`: Isc low and Voc low too (uniform loss of current and voltage, no knee);
 * - `soiling`: Isc low, Voc and fill factor as expected (less light reaches the cells; a clean
 *   reference cell measured the irradiance);
 * - `normal`: Pmp at least pmpRatioNormal of expected and nothing above;
 * - `unclassified`: power lost without one of these patterns.
 */
export function analyzeIvCurve(curve: IvCurve, cfg: IvStringConfig, conditions: { irradiance: number; temperature: number }, thresholds: Partial<IvThresholds> = {}): IvAnalysis {
  const th = { ...IV_THRESHOLDS, ...thresholds };
  const { irradiance, temperature } = conditions;
  if (!(irradiance > 0) || !Number.isFinite(temperature)) throw new IvCurveError('the curve needs the irradiance (> 0 W/m2) and cell temperature it was measured at');
  const circuit = expectedCircuit(cfg, irradiance, temperature);
  const expected = modelFeatures(circuit);
  const a = circuit.groups[0].params.a * circuit.groups[0].count;
  const measured = ivFeatures(curve, { a, thresholds: th });
  const ratio = (x: number, y: number): number => (y !== 0 ? x / y : 0);
  const ratios = {
    isc: ratio(measured.iscA, expected.iscA),
    voc: ratio(measured.vocV, expected.vocV),
    imp: ratio(measured.impA, expected.impA),
    vmp: ratio(measured.vmpV, expected.vmpV),
    pmp: ratio(measured.pmpW, expected.pmpW),
    fillFactor: ratio(measured.fillFactor, expected.fillFactor),
    rs: measured.rsOhm === null || expected.rsOhm === null ? null : ratio(measured.rsOhm, expected.rsOhm),
    rsh: ratio(measured.rshOhm, expected.rshOhm),
  };
  const f = (x: number): string => x.toFixed(3);
  const reasons: string[] = [];
  let classification: IvClass;
  if (measured.steps > 0) {
    classification = 'mismatch';
    reasons.push(`${measured.steps} knee${measured.steps > 1 ? 's' : ''} below the main one: bypass diodes conducting`);
  } else if (ratios.rsh < th.rshRatioLow) {
    classification = 'low_shunt_resistance';
    reasons.push(`shunt resistance ${measured.rshOhm.toFixed(1)} ohm is ${f(ratios.rsh)} of the expected ${expected.rshOhm.toFixed(1)} (< ${th.rshRatioLow})`);
  } else if (ratios.rs !== null && ratios.rs > th.rsRatioHigh) {
    classification = 'high_series_resistance';
    reasons.push(`series resistance ${(measured.rsOhm ?? 0).toFixed(2)} ohm is ${f(ratios.rs)} of the expected ${(expected.rsOhm ?? 0).toFixed(2)} (> ${th.rsRatioHigh})`);
  } else if (ratios.isc < th.iscRatioLow && ratios.voc < th.vocRatioLow) {
    classification = 'degradation';
    reasons.push(`Isc ${f(ratios.isc)} and Voc ${f(ratios.voc)} of expected: current and voltage lost, no knee`);
  } else if (ratios.isc < th.iscRatioLow && ratios.fillFactor >= th.fillFactorRatioNormal) {
    classification = 'soiling';
    reasons.push(`Isc ${f(ratios.isc)} of expected with Voc ${f(ratios.voc)} and fill factor ${f(ratios.fillFactor)}: less light on the cells, the shape normal`);
  } else if (ratios.pmp >= th.pmpRatioNormal) {
    classification = 'normal';
    reasons.push(`Pmp ${f(ratios.pmp)} of expected, shape normal`);
  } else {
    classification = 'unclassified';
    reasons.push(`Pmp ${f(ratios.pmp)} of expected (Isc ${f(ratios.isc)}, Voc ${f(ratios.voc)}, fill factor ${f(ratios.fillFactor)}) without a known pattern`);
  }
  return { classification, reasons, measured, expected, ratios, irradiance, temperature };
}
