/**
 * The simulated plant's physics, as plain functions of time so that a value at a simulated instant
 * does not depend on when or how often it is read.
 *
 * - Sun position: the NREL Solar Position Algorithm (components/lib/solar.ts), refracted with the
 *   standard atmosphere: what a tracker controller computes, so a healthy simulated tracker sits on
 *   the ideal angle an analytics function computes for it.
 * - Clear-sky global horizontal irradiance: Haurwitz (1945), GHI = 1098 cos z exp(-0.057 / cos z).
 *   Split into direct and diffuse with a fixed clear-sky diffuse share.
 * - Clouds: seeded value noise over time; while the noise is above 1 - cloudiness, the direct beam
 *   is attenuated (up to 75 %), the diffuse part grows a little. While it rains the sky is overcast.
 * - Rain: seeded events (at most one starting per UTC day, `rainChance` per day, 0.5..4 h at
 *   0.5..8 mm/h), only with cloudiness > 0.
 * - Plane of array: a horizontal north-south single-axis tracker at a given rotation (the tracker
 *   controller's actual angle): POA = DNI cos(incidence) + DHI (1 + cos(tilt)) / 2. Its ideal rotation
 *   is true tracking with backtracking from the ground coverage ratio (solar.ts trackerRotation);
 *   row-to-row shading (a row off its backtracking angle at low sun) is not modelled.
 * - Module temperature: Sandia open-rack model (King et al. 2004), Tm = Ta + E exp(a + b ws),
 *   a = -3.56, b = -0.075.
 * - PV power: P = Pstc (E / 1000) (1 + gamma (Tm - 25)), gamma = -0.35 %/K; Vmp falls 0.29 %/K and
 *   with low irradiance (a log term).
 * - Inverter: loss = P0 + k1 P + k2 P^2 / Prated (a Schmidt-Sauer style loss model), giving ~96-97 %
 *   over most of the range and a sharp drop at very low load.
 */
import { solarPosition, sunVector, trackerRotation } from '../../components/lib/solar';

export { mulberry32 } from '../../components/lib/random';

const DEG = Math.PI / 180;


/** A hash of (seed, integer) to [0, 1). */
export function hash01(seed: number, n: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n | 0, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** Smooth value noise in [0, 1) over x (one lattice point per unit). */
export function valueNoise(seed: number, x: number): number {
  const i = Math.floor(x);
  const f = x - i;
  const s = f * f * (3 - 2 * f);
  return hash01(seed, i) * (1 - s) + hash01(seed, i + 1) * s;
}

export interface SunPosition {
  /** Unit vector to the sun in east, north, up coordinates. */
  e: number;
  n: number;
  u: number;
  elevationDeg: number;
  /** Apparent (refracted) zenith and azimuth (from north, eastward), degrees. */
  zenithDeg: number;
  azimuthDeg: number;
}

export function sunPosition(timeMs: number, latitudeDeg: number, longitudeDeg: number): SunPosition {
  const p = solarPosition(timeMs, { latitude: latitudeDeg, longitude: longitudeDeg });
  const [e, n, u] = sunVector(p.zenith, p.azimuth);
  return { e, n, u, elevationDeg: p.elevation, zenithDeg: p.zenith, azimuthDeg: p.azimuth };
}

export interface Irradiance {
  ghi: number;
  dni: number;
  dhi: number;
  /** 1 = clear; lower under a cloud. */
  cloudTransmittance: number;
}

/** `overcast`: it is raining, the sky is fully covered. */
export function irradiance(sun: SunPosition, timeMs: number, seed: number, cloudiness: number, overcast = false): Irradiance {
  const cosz = sun.u;
  if (cosz <= 0.01) return { ghi: 0, dni: 0, dhi: 0, cloudTransmittance: 1 };
  const ghiClear = 1098 * cosz * Math.exp(-0.057 / cosz);
  const dhiClear = 0.12 * ghiClear;
  const dniClear = (ghiClear - dhiClear) / cosz;
  const t = timeMs / 1000;
  const noise = 0.6 * valueNoise(seed, t / 900) + 0.4 * valueNoise(seed + 17, t / 150);
  let cover = 0;
  if (cloudiness > 0 && noise > 1 - cloudiness) cover = Math.min(1, (noise - (1 - cloudiness)) / Math.max(cloudiness, 0.05));
  if (overcast) cover = 1;
  const trans = 1 - 0.75 * cover;
  const dni = dniClear * trans;
  const dhi = dhiClear * (1 + 0.8 * cover);
  return { ghi: dni * cosz + dhi, dni, dhi, cloudTransmittance: trans };
}

/**
 * The ideal rotation of the horizontal north-south tracker, in degrees: true tracking, backtracked
 * for the ground coverage ratio `gcr` (0 = none), limited to +-limitDeg; negative faces east
 * (morning), positive faces west, 0 is flat (also at night: stow flat). pvlib's sign convention.
 */
/** The simulated rows' ground coverage ratio unless configured (PlantOptions.trackerGcr). */
export const DEFAULT_TRACKER_GCR = 0.35;

export function trackerIdealAngle(sun: SunPosition, limitDeg: number, gcr = DEFAULT_TRACKER_GCR): number {
  return trackerRotation(sun.zenithDeg, sun.azimuthDeg, { axisAzimuth: 180, maxAngle: limitDeg, gcr }).angle;
}

export function planeOfArray(sun: SunPosition, irr: Irradiance, trackerAngleDeg: number): number {
  const r = -trackerAngleDeg * DEG;
  const cosInc = Math.max(0, sun.e * Math.sin(r) + sun.u * Math.cos(r));
  return irr.dni * cosInc + irr.dhi * (1 + Math.cos(r)) / 2;
}

/** Ambient temperature: a daily sine around `meanC`, warmest mid-afternoon (solar time). */
export function ambientTemperature(timeMs: number, longitudeDeg: number, meanC: number, swingC: number): number {
  const solarHours = (((timeMs / 3600000 + longitudeDeg / 15) % 24) + 24) % 24;
  return meanC + swingC * Math.sin((2 * Math.PI * (solarHours - 9)) / 24);
}

export function windSpeed(timeMs: number, seed: number): number {
  return 1 + 6 * valueNoise(seed + 101, timeMs / 1000 / 600) + 1.5 * valueNoise(seed + 202, timeMs / 1000 / 60);
}

/** Sandia open-rack module temperature. */
export function moduleTemperature(poa: number, ambientC: number, windMs: number): number {
  return ambientC + poa * Math.exp(-3.56 - 0.075 * windMs);
}

export interface StringOperatingPoint {
  w: number;
  v: number;
  a: number;
}

/** Maximum-power point of one PV string (or MPPT input) of `stcW` at irradiance and temperature. */
export function pvString(stcW: number, vmpStc: number, poa: number, moduleC: number): StringOperatingPoint {
  if (poa < 5) return { w: 0, v: 0, a: 0 };
  const w = Math.max(0, stcW * (poa / 1000) * (1 - 0.0035 * (moduleC - 25)));
  const v = vmpStc * (1 - 0.0029 * (moduleC - 25)) * (1 + 0.04 * Math.log(Math.min(poa, 1200) / 1000));
  return { w, v, a: v > 0 ? w / v : 0 };
}

/** AC output of an inverter for `dcW` in, before limits. Below its own consumption it makes nothing. */
export function inverterAc(dcW: number, ratedW: number): number {
  const p0 = 0.002 * ratedW;
  const loss = p0 + 0.01 * dcW + (0.02 * dcW * dcW) / ratedW;
  return Math.max(0, dcW - loss);
}

/** The DC power that gives `acW` out (inverse of inverterAc, by bisection). */
export function inverterDcFor(acW: number, ratedW: number): number {
  if (acW <= 0) return 0;
  let lo = acW;
  let hi = acW * 1.5 + 0.01 * ratedW;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (inverterAc(mid, ratedW) < acW) lo = mid;
    else hi = mid;
  }
  return hi;
}

export interface RainEvent {
  startMs: number;
  endMs: number;
  rateMmH: number;
}

const DAY_MS = 86400000;

/**
 * The rain event starting on UTC day `day` (days since 1970-01-01), if any: with probability
 * `chance`, starting between 00:00 and 20:00, 0.5..4 h long, 0.5..8 mm/h, all drawn from the seed.
 */
export function rainEventOfDay(seed: number, day: number, chance: number): RainEvent | undefined {
  if (!(chance > 0) || hash01(seed + 303, day) >= chance) return undefined;
  const startMs = day * DAY_MS + hash01(seed + 304, day) * 20 * 3600000;
  const endMs = startMs + (0.5 + 3.5 * hash01(seed + 305, day)) * 3600000;
  return { startMs, endMs, rateMmH: 0.5 + 7.5 * hash01(seed + 306, day) };
}

/** Rain events that can touch `timeMs` (the one of its day and of the day before, which may run past midnight). */
export function rainEventsAround(seed: number, timeMs: number, chance: number): RainEvent[] {
  const day = Math.floor(timeMs / DAY_MS);
  const out: RainEvent[] = [];
  for (const d of [day - 1, day]) {
    const ev = rainEventOfDay(seed, d, chance);
    if (ev) out.push(ev);
  }
  return out;
}

/** Rain rate now, mm/h. */
export function rainRate(seed: number, timeMs: number, chance: number): number {
  for (const ev of rainEventsAround(seed, timeMs, chance)) if (timeMs >= ev.startMs && timeMs < ev.endMs) return ev.rateMmH;
  return 0;
}

/** Rain (mm) fallen between fromMs and toMs (events at most a day apart from toMs). */
export function rainBetween(seed: number, fromMs: number, toMs: number, chance: number): number {
  let mm = 0;
  const day = Math.floor(toMs / DAY_MS);
  for (let d = Math.floor(fromMs / DAY_MS) - 1; d <= day; d++) {
    const ev = rainEventOfDay(seed, d, chance);
    if (!ev) continue;
    const overlap = Math.min(toMs, ev.endMs) - Math.max(fromMs, ev.startMs);
    if (overlap > 0) mm += (ev.rateMmH * overlap) / 3600000;
  }
  return mm;
}
