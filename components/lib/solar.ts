/**
 * The sun for a solar plant: position, clear-sky irradiance and the ideal single-axis tracker
 * rotation. Pure functions of time and place (no clock, no I/O), cheap enough to run per minute per
 * tracker. Formulas, references and the accuracy measured here: docs/analytics-solar.md.
 *
 * - Position: the NREL Solar Position Algorithm (Reda & Andreas, "Solar Position Algorithm for
 *   Solar Radiation Applications", NREL/TP-560-34302, 2004, revised 2008): Earth heliocentric
 *   terms (VSOP87 as tabulated there), nutation, aberration, apparent sidereal time, topocentric
 *   parallax and an optional refraction correction from pressure and temperature. Stated
 *   uncertainty +-0.0003 degrees for years -2000..6000, given the right Delta T.
 * - Delta T (TT - UT1): the Espenak & Meeus polynomials ("Polynomial Expressions for Delta T",
 *   NASA Five Millennium Canon of Solar Eclipses, 2006), except 2017..2050 where TT - UTC = 69.184 s
 *   is used (UTC has had no leap second since 2017-01-01 and stays within 0.9 s of UT1).
 * - Extraterrestrial irradiance: solar constant / R^2 with R from the same algorithm.
 * - Clear sky: Haurwitz (1945) and Ineichen & Perez (2002) with a constant Linke turbidity;
 *   relative air mass from Kasten & Young (1989).
 * - Tracker: true tracking (Lorenzo, Narvarte & Munoz, "Tracking and back-tracking", Progress in
 *   Photovoltaics 19, 2011) and slope-aware backtracking (Anderson & Mikofski, "Slope-Aware
 *   Backtracking for Single-Axis Trackers", NREL/TP-5K00-76626, 2020), in pvlib's `singleaxis`
 *   sign convention: for a north-south axis (axisAzimuth 180) a positive angle tilts the modules
 *   toward the west, negative toward the east, 0 is flat.
 */

const RAD = Math.PI / 180;
const DEG = 180 / Math.PI;

// ---------------------------------------------------------------------------------------------
// Periodic terms
// ---------------------------------------------------------------------------------------------

/**
 * Earth periodic terms A, B, C (term = A cos(B + C x JME)), NREL/TP-560-34302 Table A4.2: the
 * heliocentric longitude L0..L5, latitude B0..B1 and radius vector R0..R4 series, in 1e-8 rad / AU.
 */
const EARTH = {
  L0: [
    175347046, 0, 0,  3341656, 4.6692568, 6283.07585,  34894, 4.6261, 12566.1517,  3497, 2.7441, 5753.3849,  3418, 2.8289, 3.5231,
    3136, 3.6277, 77713.7715,  2676, 4.4181, 7860.4194,  2343, 6.1352, 3930.2097,  1324, 0.7425, 11506.7698,  1273, 2.0371, 529.691,
    1199, 1.1096, 1577.3435,  990, 5.233, 5884.927,  902, 2.045, 26.298,  857, 3.508, 398.149,  780, 1.179, 5223.694,
    753, 2.533, 5507.553,  505, 4.583, 18849.228,  492, 4.205, 775.523,  357, 2.92, 0.067,  317, 5.849, 11790.629,
    284, 1.899, 796.298,  271, 0.315, 10977.079,  243, 0.345, 5486.778,  206, 4.806, 2544.314,  205, 1.869, 5573.143,
    202, 2.458, 6069.777,  156, 0.833, 213.299,  132, 3.411, 2942.463,  126, 1.083, 20.775,  115, 0.645, 0.98,
    103, 0.636, 4694.003,  102, 0.976, 15720.839,  102, 4.267, 7.114,  99, 6.21, 2146.17,  98, 0.68, 155.42,
    86, 5.98, 161000.69,  85, 1.3, 6275.96,  85, 3.67, 71430.7,  80, 1.81, 17260.15,  79, 3.04, 12036.46,
    75, 1.76, 5088.63,  74, 3.5, 3154.69,  74, 4.68, 801.82,  70, 0.83, 9437.76,  62, 3.98, 8827.39,
    61, 1.82, 7084.9,  57, 2.78, 6286.6,  56, 4.39, 14143.5,  56, 3.47, 6279.55,  52, 0.19, 12139.55,
    52, 1.33, 1748.02,  51, 0.28, 5856.48,  49, 0.49, 1194.45,  41, 5.37, 8429.24,  41, 2.4, 19651.05,
    39, 6.17, 10447.39,  37, 6.04, 10213.29,  37, 2.57, 1059.38,  36, 1.71, 2352.87,  36, 1.78, 6812.77,
    33, 0.59, 17789.85,  30, 0.44, 83996.85,  30, 2.74, 1349.87,  25, 3.16, 4690.48,
  ],
  L1: [
    628331966747, 0, 0,  206059, 2.678235, 6283.07585,  4303, 2.6351, 12566.1517,  425, 1.59, 3.523,  119, 5.796, 26.298,
    109, 2.966, 1577.344,  93, 2.59, 18849.23,  72, 1.14, 529.69,  68, 1.87, 398.15,  67, 4.41, 5507.55,
    59, 2.89, 5223.69,  56, 2.17, 155.42,  45, 0.4, 796.3,  36, 0.47, 775.52,  29, 2.65, 7.11,
    21, 5.34, 0.98,  19, 1.85, 5486.78,  19, 4.97, 213.3,  17, 2.99, 6275.96,  16, 0.03, 2544.31,
    16, 1.43, 2146.17,  15, 1.21, 10977.08,  12, 2.83, 1748.02,  12, 3.26, 5088.63,  12, 5.27, 1194.45,
    12, 2.08, 4694,  11, 0.77, 553.57,  10, 1.3, 6286.6,  10, 4.24, 1349.87,  9, 2.7, 242.73,
    9, 5.64, 951.72,  8, 5.3, 2352.87,  6, 2.65, 9437.76,  6, 4.67, 4690.48,
  ],
  L2: [
    52919, 0, 0,  8720, 1.0721, 6283.0758,  309, 0.867, 12566.152,  27, 0.05, 3.52,  16, 5.19, 26.3,
    16, 3.68, 155.42,  10, 0.76, 18849.23,  9, 2.06, 77713.77,  7, 0.83, 775.52,  5, 4.66, 1577.34,
    4, 1.03, 7.11,  4, 3.44, 5573.14,  3, 5.14, 796.3,  3, 6.05, 5507.55,  3, 1.19, 242.73,
    3, 6.12, 529.69,  3, 0.31, 398.15,  3, 2.28, 553.57,  2, 4.38, 5223.69,  2, 3.75, 0.98,
  ],
  L3: [
    289, 5.844, 6283.076,  35, 0, 0,  17, 5.49, 12566.15,  3, 5.2, 155.42,  1, 4.72, 3.52,
    1, 5.3, 18849.23,  1, 5.97, 242.73,
  ],
  L4: [
    114, 3.142, 0,  8, 4.13, 6283.08,  1, 3.84, 12566.15,
  ],
  L5: [
    1, 3.14, 0,
  ],
  B0: [
    280, 3.199, 84334.662,  102, 5.422, 5507.553,  80, 3.88, 5223.69,  44, 3.7, 2352.87,  32, 4, 1577.34,
  ],
  B1: [
    9, 3.9, 5507.55,  6, 1.73, 5223.69,
  ],
  R0: [
    100013989, 0, 0,  1670700, 3.0984635, 6283.07585,  13956, 3.05525, 12566.1517,  3084, 5.1985, 77713.7715,  1628, 1.1739, 5753.3849,
    1576, 2.8469, 7860.4194,  925, 5.453, 11506.77,  542, 4.564, 3930.21,  472, 3.661, 5884.927,  346, 0.964, 5507.553,
    329, 5.9, 5223.694,  307, 0.299, 5573.143,  243, 4.273, 11790.629,  212, 5.847, 1577.344,  186, 5.022, 10977.079,
    175, 3.012, 18849.228,  110, 5.055, 5486.778,  98, 0.89, 6069.78,  86, 5.69, 15720.84,  86, 1.27, 161000.69,
    65, 0.27, 17260.15,  63, 0.92, 529.69,  57, 2.01, 83996.85,  56, 5.24, 71430.7,  49, 3.25, 2544.31,
    47, 2.58, 775.52,  45, 5.54, 9437.76,  43, 6.01, 6275.96,  39, 5.36, 4694,  38, 2.39, 8827.39,
    37, 0.83, 19651.05,  37, 4.9, 12139.55,  36, 1.67, 12036.46,  35, 1.84, 2942.46,  33, 0.24, 7084.9,
    32, 0.18, 5088.63,  32, 1.78, 398.15,  28, 1.21, 6286.6,  28, 1.9, 6279.55,  26, 4.59, 10447.39,
  ],
  R1: [
    103019, 1.10749, 6283.07585,  1721, 1.0644, 12566.1517,  702, 3.142, 0,  32, 1.02, 18849.23,  31, 2.84, 5507.55,
    25, 1.32, 5223.69,  18, 1.42, 1577.34,  10, 5.91, 10977.08,  9, 1.42, 6275.96,  9, 0.27, 5486.78,
  ],
  R2: [
    4359, 5.7846, 6283.0758,  124, 5.579, 12566.152,  12, 3.14, 0,  9, 3.63, 77713.77,  6, 1.87, 5573.14,
    3, 5.47, 18849.23,
  ],
  R3: [
    145, 4.273, 6283.076,  7, 3.92, 12566.15,
  ],
  R4: [
    4, 2.56, 6283.08,
  ],
};

const series = (groups: readonly number[][]): Float64Array[] => groups.map((g) => Float64Array.from(g));
const L_TERMS = series([EARTH.L0, EARTH.L1, EARTH.L2, EARTH.L3, EARTH.L4, EARTH.L5]);
const B_TERMS = series([EARTH.B0, EARTH.B1]);
const R_TERMS = series([EARTH.R0, EARTH.R1, EARTH.R2, EARTH.R3, EARTH.R4]);

/**
 * Nutation in longitude and obliquity, NREL/TP-560-34302 Table A4.3: per row the multipliers Y0..Y4
 * of the arguments X0..X4, then a, b, c, d (0.0001 arcsec): dpsi += (a + b JCE) sin(sum Yi Xi),
 * deps += (c + d JCE) cos(sum Yi Xi).
 */
const NUTATION = Float64Array.from([
  0, 0, 0, 0, 1, -171996, -174.2, 92025, 8.9,
  -2, 0, 0, 2, 2, -13187, -1.6, 5736, -3.1,
  0, 0, 0, 2, 2, -2274, -0.2, 977, -0.5,
  0, 0, 0, 0, 2, 2062, 0.2, -895, 0.5,
  0, 1, 0, 0, 0, 1426, -3.4, 54, -0.1,
  0, 0, 1, 0, 0, 712, 0.1, -7, 0,
  -2, 1, 0, 2, 2, -517, 1.2, 224, -0.6,
  0, 0, 0, 2, 1, -386, -0.4, 200, 0,
  0, 0, 1, 2, 2, -301, 0, 129, -0.1,
  -2, -1, 0, 2, 2, 217, -0.5, -95, 0.3,
  -2, 0, 1, 0, 0, -158, 0, 0, 0,
  -2, 0, 0, 2, 1, 129, 0.1, -70, 0,
  0, 0, -1, 2, 2, 123, 0, -53, 0,
  2, 0, 0, 0, 0, 63, 0, 0, 0,
  0, 0, 1, 0, 1, 63, 0.1, -33, 0,
  2, 0, -1, 2, 2, -59, 0, 26, 0,
  0, 0, -1, 0, 1, -58, -0.1, 32, 0,
  0, 0, 1, 2, 1, -51, 0, 27, 0,
  -2, 0, 2, 0, 0, 48, 0, 0, 0,
  0, 0, -2, 2, 1, 46, 0, -24, 0,
  2, 0, 0, 2, 2, -38, 0, 16, 0,
  0, 0, 2, 2, 2, -31, 0, 13, 0,
  0, 0, 2, 0, 0, 29, 0, 0, 0,
  -2, 0, 1, 2, 2, 29, 0, -12, 0,
  0, 0, 0, 2, 0, 26, 0, 0, 0,
  -2, 0, 0, 2, 0, -22, 0, 0, 0,
  0, 0, -1, 2, 1, 21, 0, -10, 0,
  0, 2, 0, 0, 0, 17, -0.1, 0, 0,
  2, 0, -1, 0, 1, 16, 0, -8, 0,
  -2, 2, 0, 2, 2, -16, 0.1, 7, 0,
  0, 1, 0, 0, 1, -15, 0, 9, 0,
  -2, 0, 1, 0, 1, -13, 0, 7, 0,
  0, -1, 0, 0, 1, -12, 0, 6, 0,
  0, 0, 2, -2, 0, 11, 0, 0, 0,
  2, 0, -1, 2, 1, -10, 0, 5, 0,
  2, 0, 1, 2, 2, -8, 0, 3, 0,
  0, 1, 0, 2, 2, 7, 0, -3, 0,
  -2, 1, 1, 0, 0, -7, 0, 0, 0,
  0, -1, 0, 2, 2, -7, 0, 3, 0,
  2, 0, 0, 2, 1, -7, 0, 3, 0,
  2, 0, 1, 0, 0, 6, 0, 0, 0,
  -2, 0, 2, 2, 2, 6, 0, -3, 0,
  -2, 0, 1, 2, 1, 6, 0, -3, 0,
  2, 0, -2, 0, 1, -6, 0, 3, 0,
  2, 0, 0, 0, 1, -6, 0, 3, 0,
  0, -1, 1, 0, 0, 5, 0, 0, 0,
  -2, -1, 0, 2, 1, -5, 0, 3, 0,
  -2, 0, 0, 0, 1, -5, 0, 3, 0,
  0, 0, 2, 2, 1, -5, 0, 3, 0,
  -2, 0, 2, 0, 1, 4, 0, 0, 0,
  -2, 1, 0, 2, 1, 4, 0, 0, 0,
  0, 0, 1, -2, 0, 4, 0, 0, 0,
  -1, 0, 1, 0, 0, -4, 0, 0, 0,
  -2, 1, 0, 0, 0, -4, 0, 0, 0,
  1, 0, 0, 0, 0, -4, 0, 0, 0,
  0, 0, 1, 2, 0, 3, 0, 0, 0,
  0, 0, -2, 2, 2, -3, 0, 0, 0,
  -1, -1, 1, 0, 0, -3, 0, 0, 0,
  0, 1, 1, 0, 0, -3, 0, 0, 0,
  0, -1, 1, 2, 2, -3, 0, 0, 0,
  2, -1, -1, 2, 2, -3, 0, 0, 0,
  0, 0, 3, 2, 2, -3, 0, 0, 0,
  2, -1, 0, 2, 2, -3, 0, 0, 0,
]);
const NUTATION_ROWS = NUTATION.length / 9;

/** sum over groups k of JME^k x sum_i A cos(B + C JME), / 1e8. */
function earthSeries(groups: Float64Array[], jme: number): number {
  let total = 0;
  let pow = 1;
  for (const g of groups) {
    let s = 0;
    for (let i = 0; i < g.length; i += 3) s += g[i] * Math.cos(g[i + 1] + g[i + 2] * jme);
    total += s * pow;
    pow *= jme;
  }
  return total / 1e8;
}

const mod360 = (x: number): number => {
  const r = x % 360;
  return r < 0 ? r + 360 : r;
};
/** -180 < x <= 180 */
const mod180 = (x: number): number => {
  const r = mod360(x);
  return r > 180 ? r - 360 : r;
};

// ---------------------------------------------------------------------------------------------
// Delta T
// ---------------------------------------------------------------------------------------------

const MS_PER_DAY = 86400000;
/** Julian day of the Unix epoch (1970-01-01T00:00Z). */
const JD_UNIX_EPOCH = 2440587.5;
const JD_J2000 = 2451545;
/** TT - UTC since 2017-01-01: TT - TAI (32.184 s) + TAI - UTC (37 s, IERS Bulletin C). */
export const TT_MINUS_UTC_SINCE_2017 = 69.184;

/**
 * Delta T = TT - UT1 in seconds, the default for `solarPosition`.
 *
 * 2017.0 <= y < 2050: TT - UTC = 69.184 s. UTC is kept within 0.9 s of UT1 by leap seconds and has
 * had none since 2017-01-01, so this is within 0.9 s of the true value while none is added (the
 * Espenak & Meeus polynomial overestimates it by about 5 s in 2025). Otherwise the Espenak & Meeus
 * (2006) polynomial of the decimal year y (1900..2150), and their long-term parabola
 * -20 + 32 ((y - 1820) / 100)^2 outside that range. Delta T only moves the sun along its orbit
 * (sidereal time runs on UT): a second of it is about 1.1e-5 degrees.
 */
export function deltaT(timeMs: number): number {
  const y = 1970 + timeMs / (365.2425 * MS_PER_DAY);
  if (y >= 2017 && y < 2050) return TT_MINUS_UTC_SINCE_2017;
  const u = (y - 1820) / 100;
  if (y < 1900 || y >= 2150) return -20 + 32 * u * u;
  if (y < 1920) {
    const t = y - 1900;
    return -2.79 + 1.494119 * t - 0.0598939 * t ** 2 + 0.0061966 * t ** 3 - 0.000197 * t ** 4;
  }
  if (y < 1941) {
    const t = y - 1920;
    return 21.2 + 0.84493 * t - 0.0761 * t ** 2 + 0.0020936 * t ** 3;
  }
  if (y < 1961) {
    const t = y - 1950;
    return 29.07 + 0.407 * t - t ** 2 / 233 + t ** 3 / 2547;
  }
  if (y < 1986) {
    const t = y - 1975;
    return 45.45 + 1.067 * t - t ** 2 / 260 - t ** 3 / 718;
  }
  if (y < 2005) {
    const t = y - 2000;
    return 63.86 + 0.3345 * t - 0.060374 * t ** 2 + 0.0017275 * t ** 3 + 0.000651814 * t ** 4 + 0.00002373599 * t ** 5;
  }
  if (y < 2050) {
    // 2005..2017 only (see above).
    const t = y - 2000;
    return 62.92 + 0.32217 * t + 0.005589 * t ** 2;
  }
  return -20 + 32 * u * u - 0.5628 * (2150 - y);
}

// ---------------------------------------------------------------------------------------------
// Solar position
// ---------------------------------------------------------------------------------------------

export interface Location {
  /** Geodetic latitude, degrees, north positive. */
  latitude: number;
  /** Degrees, east positive. */
  longitude: number;
  /** Metres above sea level (default 0). */
  elevation?: number;
}

/** Annual mean local pressure and temperature, for the refraction correction. */
export interface Atmosphere {
  /** hPa (= mbar). */
  pressure: number;
  /** Degrees Celsius. */
  temperature: number;
}

/** The refraction formula's own reference conditions: 1010 hPa, 10 C. */
export const STANDARD_ATMOSPHERE: Readonly<Atmosphere> = Object.freeze({ pressure: 1010, temperature: 10 });

export interface SolarPositionOptions {
  /** TT - UT1, seconds (default `deltaT(timeMs)`). */
  deltaT?: number;
  /** Refraction conditions (default STANDARD_ATMOSPHERE); null = no refraction (the geometric position). */
  atmosphere?: Atmosphere | null;
}

export interface SolarPosition {
  /** Topocentric zenith angle, degrees, refraction-corrected unless `atmosphere` is null. */
  zenith: number;
  /** 90 - zenith. */
  elevation: number;
  /** Degrees from north, eastward (0..360). */
  azimuth: number;
  /** Topocentric zenith without refraction, degrees. */
  geometricZenith: number;
  /** Topocentric declination, degrees. */
  declination: number;
  /** Topocentric right ascension, degrees (0..360). */
  rightAscension: number;
  /** Topocentric local hour angle, degrees, -180..180: negative before solar noon. */
  hourAngle: number;
  /** Apparent minus mean solar time, minutes (-20..20). */
  equationOfTime: number;
  /** Earth-sun distance, AU. */
  earthSunDistance: number;
  /** Julian day (UT). */
  julianDay: number;
  /** The Delta T used, seconds. */
  deltaT: number;
}

/** What depends on time only (shared by every location at the same instant). */
interface Geocentric {
  jd: number;
  deltaT: number;
  /** Apparent sidereal time at Greenwich, degrees. */
  nu: number;
  /** Geocentric right ascension and declination, degrees. */
  alpha: number;
  delta: number;
  r: number;
  eot: number;
}

function geocentric(jd: number, dt: number): Geocentric {
  const jde = jd + dt / 86400;
  const jc = (jd - JD_J2000) / 36525;
  const jce = (jde - JD_J2000) / 36525;
  const jme = jce / 10;

  // Heliocentric longitude, latitude (degrees) and radius vector (AU) of the Earth.
  const l = mod360(earthSeries(L_TERMS, jme) * DEG);
  const b = earthSeries(B_TERMS, jme) * DEG;
  const r = earthSeries(R_TERMS, jme);
  // Geocentric longitude and latitude of the sun.
  const theta = mod360(l + 180);
  const beta = -b;

  // Nutation (degrees).
  const x0 = 297.85036 + 445267.11148 * jce - 0.0019142 * jce * jce + (jce * jce * jce) / 189474;
  const x1 = 357.52772 + 35999.05034 * jce - 0.0001603 * jce * jce - (jce * jce * jce) / 300000;
  const x2 = 134.96298 + 477198.867398 * jce + 0.0086972 * jce * jce + (jce * jce * jce) / 56250;
  const x3 = 93.27191 + 483202.017538 * jce - 0.0036825 * jce * jce + (jce * jce * jce) / 327270;
  const x4 = 125.04452 - 1934.136261 * jce + 0.0020708 * jce * jce + (jce * jce * jce) / 450000;
  let sumPsi = 0;
  let sumEps = 0;
  for (let i = 0; i < NUTATION_ROWS; i++) {
    const k = i * 9;
    const arg = (NUTATION[k] * x0 + NUTATION[k + 1] * x1 + NUTATION[k + 2] * x2 + NUTATION[k + 3] * x3 + NUTATION[k + 4] * x4) * RAD;
    sumPsi += (NUTATION[k + 5] + NUTATION[k + 6] * jce) * Math.sin(arg);
    sumEps += (NUTATION[k + 7] + NUTATION[k + 8] * jce) * Math.cos(arg);
  }
  const dPsi = sumPsi / 36000000;
  const dEps = sumEps / 36000000;

  // True obliquity of the ecliptic.
  const u = jme / 10;
  const eps0 =
    84381.448 +
    u * (-4680.93 + u * (-1.55 + u * (1999.25 + u * (-51.38 + u * (-249.67 + u * (-39.05 + u * (7.12 + u * (27.87 + u * (5.79 + u * 2.45)))))))));
  const eps = eps0 / 3600 + dEps;

  // Aberration, apparent longitude, apparent sidereal time.
  const dTau = -20.4898 / (3600 * r);
  const lambda = theta + dPsi + dTau;
  const nu0 = mod360(280.46061837 + 360.98564736629 * (jd - JD_J2000) + 0.000387933 * jc * jc - (jc * jc * jc) / 38710000);
  const cosEps = Math.cos(eps * RAD);
  const nu = nu0 + dPsi * cosEps;

  // Geocentric right ascension and declination.
  const sinLambda = Math.sin(lambda * RAD);
  const sinEps = Math.sin(eps * RAD);
  const alpha = mod360(Math.atan2(sinLambda * cosEps - Math.tan(beta * RAD) * sinEps, Math.cos(lambda * RAD)) * DEG);
  const delta = Math.asin(Math.sin(beta * RAD) * cosEps + Math.cos(beta * RAD) * sinEps * sinLambda) * DEG;

  // Equation of time (A.1 of the report), minutes.
  const m = mod360(280.4664567 + jme * (360007.6982779 + jme * (0.03032028 + jme * (1 / 49931 + jme * (-1 / 15300 + jme * (-1 / 2000000))))));
  let eot = 4 * (m - 0.0057183 - alpha + dPsi * cosEps);
  if (eot < -20) eot += 1440;
  else if (eot > 20) eot -= 1440;
  return { jd, deltaT: dt, nu, alpha, delta, r, eot };
}

// The time-only part is the expensive one (about 190 cosine terms); several trackers or sensors at
// the same instant reuse it.
let cached: Geocentric | undefined;

/**
 * The sun's position seen from `location` at `timeMs` (Unix milliseconds). UTC is taken for UT1:
 * |UT1 - UTC| < 0.9 s is at most 0.004 degrees of hour angle. NaN for a non-finite time or coordinate.
 */
export function solarPosition(timeMs: number, location: Location, options: SolarPositionOptions = {}): SolarPosition {
  const dt = options.deltaT ?? deltaT(timeMs);
  const jd = timeMs / MS_PER_DAY + JD_UNIX_EPOCH;
  let g = cached;
  if (g === undefined || g.jd !== jd || g.deltaT !== dt) cached = g = geocentric(jd, dt);
  const phi = location.latitude * RAD;
  const elev = location.elevation ?? 0;

  // Local hour angle (degrees), then topocentric corrections for parallax.
  const h = mod360(g.nu + location.longitude - g.alpha);
  const xi = (8.794 / (3600 * g.r)) * RAD;
  const uu = Math.atan(0.99664719 * Math.tan(phi));
  const x = Math.cos(uu) + (elev / 6378140) * Math.cos(phi);
  const y = 0.99664719 * Math.sin(uu) + (elev / 6378140) * Math.sin(phi);
  const hRad = h * RAD;
  const deltaRad = g.delta * RAD;
  const sinXi = Math.sin(xi);
  const cosDelta = Math.cos(deltaRad);
  const den = cosDelta - x * sinXi * Math.cos(hRad);
  const dAlpha = Math.atan2(-x * sinXi * Math.sin(hRad), den);
  const deltaP = Math.atan2((Math.sin(deltaRad) - y * sinXi) * Math.cos(dAlpha), den);
  const hP = hRad - dAlpha;

  // Topocentric elevation, refraction, zenith and azimuth.
  const sinPhi = Math.sin(phi);
  const cosPhi = Math.cos(phi);
  const cosHp = Math.cos(hP);
  const e0 = Math.asin(sinPhi * Math.sin(deltaP) + cosPhi * Math.cos(deltaP) * cosHp) * DEG;
  let de = 0;
  const atm = options.atmosphere === undefined ? STANDARD_ATMOSPHERE : options.atmosphere;
  // Refraction only while the sun's upper limb is above the refracted horizon (sun radius 0.26667,
  // refraction at the horizon 0.5667 degrees).
  if (atm !== null && e0 >= -(0.26667 + 0.5667)) {
    de = (atm.pressure / 1010) * (283 / (273 + atm.temperature)) * (1.02 / (60 * Math.tan((e0 + 10.3 / (e0 + 5.11)) * RAD)));
  }
  const e = e0 + de;
  const gamma = Math.atan2(Math.sin(hP), cosHp * sinPhi - Math.tan(deltaP) * cosPhi) * DEG;
  return {
    zenith: 90 - e,
    elevation: e,
    azimuth: mod360(gamma + 180),
    geometricZenith: 90 - e0,
    declination: deltaP * DEG,
    rightAscension: mod360(g.alpha + dAlpha * DEG),
    hourAngle: mod180(hP * DEG),
    equationOfTime: g.eot,
    earthSunDistance: g.r,
    julianDay: jd,
    deltaT: dt,
  };
}

/** Unit vector towards the sun in east, north, up coordinates, from zenith and azimuth (degrees). */
export function sunVector(zenith: number, azimuth: number): [number, number, number] {
  const sz = Math.sin(zenith * RAD);
  return [sz * Math.sin(azimuth * RAD), sz * Math.cos(azimuth * RAD), Math.cos(zenith * RAD)];
}

// ---------------------------------------------------------------------------------------------
// Irradiance
// ---------------------------------------------------------------------------------------------

/** Total solar irradiance at 1 AU, W/m2 (Kopp & Lean, Geophysical Research Letters 38, 2011). */
export const SOLAR_CONSTANT = 1361;

/** Irradiance on a plane normal to the sun at the top of the atmosphere, W/m2. */
export function extraterrestrialIrradiance(earthSunDistance: number, solarConstant = SOLAR_CONSTANT): number {
  return solarConstant / (earthSunDistance * earthSunDistance);
}

/**
 * Relative optical air mass (Kasten & Young, "Revised optical air mass tables and approximation
 * formula", Applied Optics 28, 1989), for the apparent (refracted) zenith in degrees; Infinity with
 * the sun at or below the horizon.
 */
export function airMass(zenith: number): number {
  if (!(zenith < 90)) return Infinity;
  return 1 / (Math.cos(zenith * RAD) + 0.50572 * (96.07995 - zenith) ** -1.6364);
}

/** Standard-atmosphere pressure at an altitude, hPa (ISO 2533 troposphere). */
export function pressureAtAltitude(elevation: number): number {
  return 1013.25 * (1 - 2.25577e-5 * elevation) ** 5.25588;
}

/**
 * Clear-sky global horizontal irradiance, W/m2, after Haurwitz (1945): 1098 cos z exp(-0.057 / cos z).
 * Needs the zenith only; 0 with the sun at or below the horizon.
 */
export function clearSkyHaurwitz(zenith: number): number {
  const c = Math.cos(zenith * RAD);
  return c > 0 ? 1098 * c * Math.exp(-0.057 / c) : 0;
}

export interface ClearSky {
  /** Global horizontal, W/m2. */
  ghi: number;
  /** Direct normal, W/m2. */
  dni: number;
  /** Diffuse horizontal, W/m2 (ghi - dni cos z). */
  dhi: number;
}

export interface IneichenOptions {
  /** Linke turbidity at air mass 2 (default 3: a rural site in a moderately clear climate). */
  linkeTurbidity?: number;
  /** Site altitude, metres (default 0). */
  elevation?: number;
  /** Extraterrestrial normal irradiance, W/m2 (default the solar constant; pass extraterrestrialIrradiance(R) for the day's value). */
  extraterrestrial?: number;
}

/**
 * Clear-sky GHI, DNI and DHI after Ineichen & Perez, "A new airmass independent formulation for the
 * Linke turbidity coefficient", Solar Energy 73(3), 2002, with one Linke turbidity for the site
 * instead of a monthly climatology ("lite"), the air mass of Kasten & Young scaled by the standard
 * pressure at the altitude, and without Perez's optional exp(0.01 AM^1.8) enhancement.
 * `zenith` is the apparent zenith in degrees. All zero with the sun at or below the horizon.
 */
export function clearSkyIneichen(zenith: number, options: IneichenOptions = {}): ClearSky {
  const cosz = Math.cos(zenith * RAD);
  if (!(zenith < 90) || cosz <= 0) return { ghi: 0, dni: 0, dhi: 0 };
  const tl = options.linkeTurbidity ?? 3;
  const h = options.elevation ?? 0;
  const i0 = options.extraterrestrial ?? SOLAR_CONSTANT;
  const am = airMass(zenith) * (pressureAtAltitude(h) / 1013.25);
  const fh1 = Math.exp(-h / 8000);
  const fh2 = Math.exp(-h / 1250);
  const cg1 = 5.09e-5 * h + 0.868;
  const cg2 = 3.92e-5 * h + 0.0387;
  const ghi = Math.max(0, cg1 * i0 * cosz * Math.exp(-cg2 * am * (fh1 + fh2 * (tl - 1))));
  const b = 0.664 + 0.163 / fh1;
  const dniBeam = Math.max(0, b * i0 * Math.exp(-0.09 * am * (tl - 1)));
  // The beam may not exceed what the global leaves after the diffuse part.
  const dniBound = (ghi * (1 - (0.1 - 0.2 * Math.exp(-tl)) / (0.1 + 0.882 / fh1))) / cosz;
  const dni = Math.min(dniBeam, Math.max(0, dniBound));
  return { ghi, dni, dhi: ghi - dni * cosz };
}

// ---------------------------------------------------------------------------------------------
// Single-axis tracker
// ---------------------------------------------------------------------------------------------

export interface TrackerGeometry {
  /**
   * Direction of the rotation axis, degrees east of north, the way its lower end points when tilted
   * (default 180: a north-south axis, then a positive rotation tilts toward the west). 0 describes the
   * same horizontal axis with the opposite sign.
   */
  axisAzimuth?: number;
  /** Axis tilt from horizontal, degrees, lower toward axisAzimuth (default 0). */
  axisTilt?: number;
  /** Rotation limit, degrees: the angle stays within +-maxAngle (default 60). */
  maxAngle?: number;
  /** Ground coverage ratio (collector width / row pitch), 0..1; 0 (default) = true tracking, no backtracking. */
  gcr?: number;
  /**
   * Cross-axis tilt, degrees (see crossAxisTilt()): the slope of the line joining neighbouring axes,
   * right-handed about the axis (default 0, flat ground).
   */
  crossAxisTilt?: number;
  /** The angle while the sun is down (default 0: flat). */
  nightAngle?: number;
}

export interface TrackerRotation {
  /** The rotation to command, degrees: true tracking, backtracked when the rows would shade each other, limited. */
  angle: number;
  /** True tracking (modules normal to the sun's projection on the rotation plane), before backtracking and limits. */
  trueTracking: number;
  /** Backtracking changed the angle. */
  backtracking: boolean;
  /** The limit clipped the angle. */
  limited: boolean;
  /** Sun above the horizon (zenith < 90); otherwise `angle` is nightAngle and `trueTracking` 0. */
  sunUp: boolean;
}

/**
 * The ideal rotation of a single-axis tracker for the sun at (zenith, azimuth) in degrees; pass the
 * apparent zenith (with refraction: the light's direction).
 *
 * True tracking, the sun's projected zenith angle on the plane normal to the axis (Lorenzo et al.
 * 2011; Anderson & Mikofski 2020):
 *   x' = x cos(ga) - y sin(ga),  z' = x sin(ba) sin(ga) + y sin(ba) cos(ga) + z cos(ba),
 *   theta_T = atan2(x', z'),
 * with the sun vector (x, y, z) east, north, up, axis azimuth ga and axis tilt ba.
 * Backtracking, eqs. 14-16 with the cross-axis tilt bc: c = |cos(theta_T - bc)| / (gcr cos bc);
 * when c < 1 the rows would shade each other and theta = theta_T - sign(theta_T) acos(c).
 * Then limited to +-maxAngle.
 */
export function trackerRotation(zenith: number, azimuth: number, geometry: TrackerGeometry = {}): TrackerRotation {
  const maxAngle = geometry.maxAngle ?? 60;
  if (!(zenith < 90)) return { angle: geometry.nightAngle ?? 0, trueTracking: 0, backtracking: false, limited: false, sunUp: false };
  const ga = (geometry.axisAzimuth ?? 180) * RAD;
  const ba = (geometry.axisTilt ?? 0) * RAD;
  const sz = Math.sin(zenith * RAD);
  const x = sz * Math.sin(azimuth * RAD);
  const y = sz * Math.cos(azimuth * RAD);
  const z = Math.cos(zenith * RAD);
  const sinGa = Math.sin(ga);
  const cosGa = Math.cos(ga);
  const xp = x * cosGa - y * sinGa;
  const zp = x * Math.sin(ba) * sinGa + y * Math.sin(ba) * cosGa + z * Math.cos(ba);
  const trueTracking = Math.atan2(xp, zp) * DEG;
  let angle = trueTracking;
  let backtracking = false;
  const gcr = geometry.gcr ?? 0;
  if (gcr > 0) {
    const bc = (geometry.crossAxisTilt ?? 0) * RAD;
    const c = Math.abs(Math.cos(trueTracking * RAD - bc)) / (gcr * Math.cos(bc));
    if (c < 1) {
      angle = trueTracking - Math.sign(trueTracking) * Math.acos(c) * DEG;
      backtracking = true;
    }
  }
  const limited = Math.abs(angle) > maxAngle;
  if (limited) angle = Math.sign(angle) * maxAngle;
  return { angle, trueTracking, backtracking, limited, sunUp: true };
}

/**
 * The cross-axis tilt for trackers on a slope, degrees (Anderson & Mikofski 2020, eqs. 22 and 26):
 * the slope of the line between neighbouring axes, in a plane normal to them, right-handed about the
 * axis: for a south-pointing axis negative where the ground falls to the east.
 * slopeAzimuth: the direction the slope faces (downhill), degrees east of north; slopeTilt: degrees.
 */
export function crossAxisTilt(slopeAzimuth: number, slopeTilt: number, axisAzimuth: number, axisTilt: number): number {
  const dg = (axisAzimuth - slopeAzimuth) * RAD;
  const ba = axisTilt * RAD;
  const bg = slopeTilt * RAD;
  // The tracker-plane normal v (eq. 22), then its component out of the axis's vertical plane (eq. 26).
  const vx = Math.sin(dg) * Math.cos(ba) * Math.cos(bg);
  const vy = Math.sin(ba) * Math.sin(bg) + Math.cos(dg) * Math.cos(ba) * Math.cos(bg);
  const vz = -Math.sin(dg) * Math.sin(bg) * Math.cos(ba);
  const norm = Math.hypot(vx, vy, vz);
  return Math.asin(((vx * Math.cos(dg) - vy * Math.sin(dg)) * Math.sin(ba) + vz * Math.cos(ba)) / norm) * DEG;
}

/**
 * The tilt of a tracker axis laid on a slope, degrees (Anderson & Mikofski 2020, eqs. 18-19):
 * tan(axis tilt) = tan(slope tilt) cos(axis azimuth - slope azimuth).
 */
export function axisTiltOnSlope(slopeAzimuth: number, slopeTilt: number, axisAzimuth: number): number {
  return Math.atan(Math.tan(slopeTilt * RAD) * Math.cos((axisAzimuth - slopeAzimuth) * RAD)) * DEG;
}

/**
 * The module plane's unit normal (east, north, up) at a rotation `angle` (degrees) of a tracker with
 * this geometry: sin(angle) x-hat' + cos(angle) z-hat' of the tracker frame above.
 */
export function trackerNormal(angle: number, geometry: TrackerGeometry = {}): [number, number, number] {
  const ga = (geometry.axisAzimuth ?? 180) * RAD;
  const ba = (geometry.axisTilt ?? 0) * RAD;
  const s = Math.sin(angle * RAD);
  const c = Math.cos(angle * RAD);
  return [s * Math.cos(ga) + c * Math.sin(ba) * Math.sin(ga), -s * Math.sin(ga) + c * Math.sin(ba) * Math.cos(ga), c * Math.cos(ba)];
}

/** Cosine of the angle of incidence of the sun (zenith, azimuth, degrees) on a tracker at `angle`; negative = from behind. */
export function trackerCosIncidence(zenith: number, azimuth: number, angle: number, geometry: TrackerGeometry = {}): number {
  const [se, sn, su] = sunVector(zenith, azimuth);
  const [ne, nn, nu] = trackerNormal(angle, geometry);
  return se * ne + sn * nn + su * nu;
}
