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
