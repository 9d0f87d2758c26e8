/**
 * components/lib/solar.ts: the NREL SPA reference case, Delta T, irradiance models worked by hand,
 * and the single-axis tracker against hand-worked cases and the published validation data of
 * Anderson & Mikofski (2020). The cross-check against an independent ephemeris (PyEphem) is
 * test/integration/solar-ephem.test.ts.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { buildSync } from 'esbuild';
import {
  SOLAR_CONSTANT,
  TT_MINUS_UTC_SINCE_2017,
  airMass,
  axisTiltOnSlope,
  clearSkyHaurwitz,
  clearSkyIneichen,
  crossAxisTilt,
  deltaT,
  extraterrestrialIrradiance,
  pressureAtAltitude,
  solarPosition,
  sunVector,
  trackerCosIncidence,
  trackerNormal,
  trackerRotation,
} from '../../components/lib/solar';

const RAD = Math.PI / 180;
const DEG = 180 / Math.PI;

describe('solarPosition', () => {
  // NREL/TP-560-34302, Table A5.1 (inputs) and A5.2 (results): 2003-10-17 12:30:30 local time,
  // UTC-7, Golden, Colorado; Delta T 67 s, 820 mbar, 11 C.
  const golden = { latitude: 39.742476, longitude: -105.1786, elevation: 1830.14 };
  const t = Date.UTC(2003, 9, 17, 19, 30, 30);

  it('reproduces the SPA report example to its printed digits', () => {
    const p = solarPosition(t, golden, { deltaT: 67, atmosphere: { pressure: 820, temperature: 11 } });
    expect(p.julianDay).toBeCloseTo(2452930.312847, 6);
    expect(p.earthSunDistance).toBeCloseTo(0.9965422974, 9);
    expect(p.declination).toBeCloseTo(-9.316179, 6);
    // H' = H - (parallax in right ascension) = 11.105900 - (-0.000369).
    expect(p.hourAngle).toBeCloseTo(11.105900 + 0.000369, 5);
    expect(p.zenith).toBeCloseTo(50.11162, 5);
    expect(p.azimuth).toBeCloseTo(194.34024, 5);
    expect(p.elevation).toBeCloseTo(90 - 50.11162, 5);
    // spa.c's example output: equation of time 14.641503 minutes.
    expect(p.equationOfTime).toBeCloseTo(14.6415, 3);
    expect(p.deltaT).toBe(67);
  });

  it('refraction lifts the sun, by about half a degree at the horizon, and is off with atmosphere null', () => {
    const noRefr = solarPosition(t, golden, { deltaT: 67, atmosphere: null });
    expect(noRefr.zenith).toBe(noRefr.geometricZenith);
    const refr = solarPosition(t, golden, { deltaT: 67 });
    expect(refr.geometricZenith).toBeCloseTo(noRefr.zenith, 12);
    // Bennett's formula at 39.87 degrees elevation: about 1.2 arcmin at 1010 hPa and 10 C.
    expect(refr.geometricZenith - refr.zenith).toBeGreaterThan(0.018);
    expect(refr.geometricZenith - refr.zenith).toBeLessThan(0.022);
    // Sunrise at the equator on an equinox: about 0.48 degrees with the formula's standard atmosphere.
    const dawn = solarPosition(Date.UTC(2025, 2, 20, 6, 7), { latitude: 0, longitude: 0 });
    expect(Math.abs(dawn.geometricZenith - 90)).toBeLessThan(0.3);
    expect(dawn.geometricZenith - dawn.zenith).toBeGreaterThan(0.4);
    expect(dawn.geometricZenith - dawn.zenith).toBeLessThan(0.6);
  });

  it('has the equation of time of the almanac: +16.4 min early November, -14.2 min mid-February', () => {
    expect(solarPosition(Date.UTC(2025, 10, 3, 12), { latitude: 0, longitude: 0 }).equationOfTime).toBeCloseTo(16.4, 0);
    expect(Math.abs(solarPosition(Date.UTC(2025, 10, 3, 12), { latitude: 0, longitude: 0 }).equationOfTime - 16.43)).toBeLessThan(0.1);
    expect(Math.abs(solarPosition(Date.UTC(2025, 1, 11, 12), { latitude: 0, longitude: 0 }).equationOfTime + 14.22)).toBeLessThan(0.1);
  });

  it('puts the sun due south (north hemisphere) or due north at solar noon, where the hour angle is 0', () => {
    // Solar noon = 12:00 - longitude/15 h - equation of time.
    const loc = { latitude: 37, longitude: -2.5 };
    const guess = Date.UTC(2025, 5, 21, 12, 10);
    const eot = solarPosition(guess, loc).equationOfTime;
    const noon = Date.UTC(2025, 5, 21, 12) + (2.5 / 15) * 3600000 - eot * 60000;
    const p = solarPosition(noon, loc);
    expect(Math.abs(p.hourAngle)).toBeLessThan(0.01);
    expect(Math.abs(p.azimuth - 180)).toBeLessThan(0.05);
    // Zenith at noon = latitude - declination.
    expect(p.geometricZenith).toBeCloseTo(37 - p.declination, 2);
    const south = solarPosition(noon, { latitude: -33.9, longitude: -2.5 });
    expect(Math.min(south.azimuth, 360 - south.azimuth)).toBeLessThan(0.05);
  });

  it('gives the morning sun in the east with a negative hour angle, the afternoon sun in the west', () => {
    const am = solarPosition(Date.UTC(2025, 2, 20, 8), { latitude: 52, longitude: 0 });
    const pm = solarPosition(Date.UTC(2025, 2, 20, 16), { latitude: 52, longitude: 0 });
    expect(am.hourAngle).toBeLessThan(0);
    expect(am.azimuth).toBeGreaterThan(90);
    expect(am.azimuth).toBeLessThan(180);
    expect(pm.hourAngle).toBeGreaterThan(0);
    expect(pm.azimuth).toBeGreaterThan(180);
    expect(pm.azimuth).toBeLessThan(270);
  });

  it('uses the default Delta T unless one is given, and gives NaN for a bad time', () => {
    const at = Date.UTC(2025, 6, 1, 9);
    expect(solarPosition(at, { latitude: 10, longitude: 10 }).deltaT).toBe(deltaT(at));
    // Delta T moves only the sun along its orbit (sidereal time runs on UT): about 1.1e-5 degrees per second.
    const a = solarPosition(at, { latitude: 10, longitude: 10 }, { deltaT: 69 });
    const b = solarPosition(at, { latitude: 10, longitude: 10 }, { deltaT: 79 });
    expect(Math.abs(a.hourAngle - b.hourAngle)).toBeGreaterThan(0.8e-4);
    expect(Math.abs(a.hourAngle - b.hourAngle)).toBeLessThan(1.4e-4);
    expect(solarPosition(NaN, { latitude: 10, longitude: 10 }).zenith).toBeNaN();
  });

  it('measures calls per second in a plain node process (printed; no timing assertion)', () => {
    // Jest's module sandbox runs this code several times slower than node does, so the loop runs
    // in a child node process on an esbuild bundle of the module.
    const bench = `
      const { solarPosition, trackerRotation } = require(${JSON.stringify(path.join(__dirname, '../../components/lib/solar.ts'))});
      const loc = { latitude: 37, longitude: -2.5, elevation: 500 };
      const start = Date.UTC(2025, 0, 1);
      const rate = (n, f) => { f(n / 10); const t0 = process.hrtime.bigint(); f(n); return Math.round(n / (Number(process.hrtime.bigint() - t0) / 1e9)); };
      let sink = 0;
      const fresh = rate(200000, (n) => { for (let i = 0; i < n; i++) sink += solarPosition(start + i * 60000, loc).zenith; });
      const shared = rate(1000000, (n) => { for (let i = 0; i < n; i++) { const p = solarPosition(start + Math.floor(i / 100) * 60000, { latitude: 37 + (i % 100) * 1e-4, longitude: -2.5 }); sink += trackerRotation(p.zenith, p.azimuth, { gcr: 0.35, maxAngle: 55 }).angle; } });
      const tracker = rate(2000000, (n) => { for (let i = 0; i < n; i++) sink += trackerRotation(40 + (i % 40), 90 + (i % 180), { gcr: 0.35, maxAngle: 55 }).angle; });
      console.log(JSON.stringify({ fresh, shared, tracker, finite: Number.isFinite(sink) }));
    `;
    const code = buildSync({ stdin: { contents: bench, resolveDir: __dirname, loader: 'js' }, bundle: true, platform: 'node', write: false, logLevel: 'silent' }).outputFiles[0].text;
    const r = JSON.parse(execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' })) as { fresh: number; shared: number; tracker: number; finite: boolean };
    expect(r.finite).toBe(true);
    process.stdout.write(
      `solar.ts, node ${process.version}: solarPosition ${r.fresh} calls/s (a new instant each call); ` +
        `${r.shared} position + rotation pairs/s (100 trackers per instant); trackerRotation ${r.tracker} calls/s\n`,
    );
  });
});

describe('deltaT', () => {
  it('is within a second of the observed values (IERS) for 1990, 2000 and 2010', () => {
    // Observed TT - UT1 on 1 January: 56.86 s (1990), 63.83 s (2000), 66.07 s (2010).
    expect(Math.abs(deltaT(Date.UTC(1990, 0, 1)) - 56.86)).toBeLessThan(1);
    expect(Math.abs(deltaT(Date.UTC(2000, 0, 1)) - 63.83)).toBeLessThan(1);
    expect(Math.abs(deltaT(Date.UTC(2010, 0, 1)) - 66.07)).toBeLessThan(1);
  });

  it('is TT - UTC from 2017 while no leap second is added: within 0.9 s of TT - UT1', () => {
    expect(TT_MINUS_UTC_SINCE_2017).toBe(32.184 + 37);
    expect(deltaT(Date.UTC(2025, 5, 1))).toBe(69.184);
    expect(deltaT(Date.UTC(2017, 0, 2))).toBe(69.184);
    // The Espenak & Meeus polynomial itself for the years before.
    expect(deltaT(Date.UTC(2010, 0, 1))).toBeCloseTo(62.92 + 0.32217 * 10 + 0.005589 * 100, 1);
    expect(deltaT(Date.UTC(2016, 11, 31))).toBeGreaterThan(69.184);
  });
});

describe('irradiance', () => {
  it('extraterrestrial irradiance follows 1/R^2', () => {
    expect(extraterrestrialIrradiance(1)).toBe(SOLAR_CONSTANT);
    // Perihelion 2025-01-04 (R 0.98333) and aphelion 2025-07-03 (R 1.01664).
    expect(extraterrestrialIrradiance(0.98329)).toBeCloseTo(1361 / 0.98329 ** 2, 6);
    const jan = solarPosition(Date.UTC(2025, 0, 4, 12), { latitude: 0, longitude: 0 }).earthSunDistance;
    const jul = solarPosition(Date.UTC(2025, 6, 4, 12), { latitude: 0, longitude: 0 }).earthSunDistance;
    expect(jan).toBeCloseTo(0.98333, 4);
    expect(jul).toBeCloseTo(1.01664, 4);
    expect(extraterrestrialIrradiance(jan)).toBeGreaterThan(1405);
    expect(extraterrestrialIrradiance(jul)).toBeLessThan(1318);
  });

  it('Kasten & Young air mass, worked by hand', () => {
    expect(airMass(0)).toBeCloseTo(1 / (1 + 0.50572 * Math.exp(-1.6364 * Math.log(96.07995))), 12);
    expect(airMass(0)).toBeCloseTo(0.99971, 5);
    expect(airMass(60)).toBeCloseTo(1.99429, 4);
    expect(airMass(90)).toBe(Infinity);
    expect(airMass(NaN)).toBe(Infinity);
  });

  it('Haurwitz clear-sky GHI, worked by hand', () => {
    expect(clearSkyHaurwitz(0)).toBeCloseTo(1098 * Math.exp(-0.057), 9);
    expect(clearSkyHaurwitz(0)).toBeCloseTo(1037.16, 2);
    expect(clearSkyHaurwitz(60)).toBeCloseTo(549 * Math.exp(-0.114), 9);
    expect(clearSkyHaurwitz(90)).toBe(0);
    expect(clearSkyHaurwitz(120)).toBe(0);
  });

  it('Ineichen & Perez clear sky at sea level, worked by hand', () => {
    const am = airMass(30);
    const cosz = Math.cos(30 * RAD);
    // Sea level: fh1 = fh2 = 1, cg1 = 0.868, cg2 = 0.0387, b = 0.827.
    const ghi = 0.868 * 1361 * cosz * Math.exp(-0.0387 * am * (1 + 1 * (3 - 1)));
    const dni = Math.min(0.827 * 1361 * Math.exp(-0.09 * am * 2), (ghi * (1 - (0.1 - 0.2 * Math.exp(-3)) / (0.1 + 0.882))) / cosz);
    const cs = clearSkyIneichen(30);
    expect(cs.ghi).toBeCloseTo(ghi, 9);
    expect(cs.dni).toBeCloseTo(dni, 9);
    expect(cs.dhi).toBeCloseTo(ghi - dni * cosz, 9);
    expect(cs.ghi).toBeGreaterThan(850);
    expect(cs.ghi).toBeLessThan(950);
    // Hazier air: less beam, more diffuse; higher site: more of everything.
    const hazy = clearSkyIneichen(30, { linkeTurbidity: 5 });
    expect(hazy.dni).toBeLessThan(cs.dni);
    expect(hazy.dhi).toBeGreaterThan(cs.dhi);
    expect(clearSkyIneichen(30, { elevation: 2000 }).ghi).toBeGreaterThan(cs.ghi);
    expect(clearSkyIneichen(95)).toEqual({ ghi: 0, dni: 0, dhi: 0 });
    expect(pressureAtAltitude(0)).toBe(1013.25);
    expect(pressureAtAltitude(1000)).toBeCloseTo(898.7, 0);
  });
});

describe('trackerRotation', () => {
  const ns = { axisAzimuth: 180, maxAngle: 90 };

  it('is 0 with the sun due south (solar noon) and at night', () => {
    for (const z of [5, 30, 60, 85]) expect(trackerRotation(z, 180, ns).angle).toBeCloseTo(0, 12);
    expect(trackerRotation(20, 180, { gcr: 0.35 }).angle).toBeCloseTo(0, 12);
    const night = trackerRotation(95, 90, { gcr: 0.35 });
    expect(night).toEqual({ angle: 0, trueTracking: 0, backtracking: false, limited: false, sunUp: false });
    expect(trackerRotation(95, 90, { nightAngle: -30 }).angle).toBe(-30);
  });

  it('tilts toward the east in the morning (negative) and the west in the afternoon (positive)', () => {
    expect(trackerRotation(50, 100, ns).angle).toBeLessThan(0);
    expect(trackerRotation(50, 260, ns).angle).toBeGreaterThan(0);
    // The same horizontal axis described as pointing north flips the sign (pvlib's convention).
    expect(trackerRotation(50, 100, { axisAzimuth: 0, maxAngle: 90 }).angle).toBeCloseTo(-trackerRotation(50, 100, ns).angle, 12);
  });

  it('true tracking with the sun due east at 10 degrees elevation is -80, and the module then faces the sun', () => {
    const r = trackerRotation(80, 90, ns);
    expect(r.trueTracking).toBeCloseTo(-80, 10);
    expect(r.angle).toBeCloseTo(-80, 10);
    expect(r.backtracking).toBe(false);
    expect(trackerCosIncidence(80, 90, r.angle, ns)).toBeCloseTo(1, 12);
    // Sun east of south: true tracking = atan(tan(zenith) sin(azimuth)) for a horizontal N-S axis, hand-worked.
    const z = 40;
    const az = 120;
    expect(trackerRotation(z, az, ns).trueTracking).toBeCloseTo(-Math.atan(Math.tan(z * RAD) * Math.sin(az * RAD)) * DEG, 10);
  });

  it('backtracks at low sun (|angle| falls as the sun sets), GCR 0 is true tracking', () => {
    // Hand-worked: theta_T = -80, gcr 0.35: c = cos(80)/0.35 = 0.49613; theta = -80 + acos(c) = -19.74.
    const c = Math.cos(80 * RAD) / 0.35;
    const r = trackerRotation(80, 90, { gcr: 0.35, maxAngle: 60 });
    expect(r.angle).toBeCloseTo(-80 + Math.acos(c) * DEG, 10);
    expect(r.angle).toBeCloseTo(-19.74, 2);
    expect(r.backtracking).toBe(true);
    expect(r.limited).toBe(false);
    expect(r.trueTracking).toBeCloseTo(-80, 10);
    // Lower and lower sun in the west: true tracking grows, the backtracked angle shrinks to 0.
    let last = Infinity;
    for (const z of [70, 75, 80, 85, 89, 89.9]) {
      const b = trackerRotation(z, 270, { gcr: 0.35, maxAngle: 90 });
      expect(b.backtracking).toBe(true);
      expect(b.angle).toBeGreaterThan(0);
      expect(b.angle).toBeLessThan(last);
      expect(b.angle).toBeLessThan(b.trueTracking);
      last = b.angle;
    }
    expect(last).toBeLessThan(1);
    // High sun: no shading, no backtracking (c >= 1 when cos(theta_T) >= gcr).
    expect(trackerRotation(40, 270, { gcr: 0.35 }).backtracking).toBe(false);
    // GCR 0 (or left out): true tracking, whatever the sun.
    expect(trackerRotation(89, 270, { gcr: 0, maxAngle: 90 }).angle).toBeCloseTo(89, 10);
    expect(trackerRotation(89, 270, { maxAngle: 90 }).backtracking).toBe(false);
  });

  it('stays within +-maxAngle and says so', () => {
    const r = trackerRotation(80, 90, { maxAngle: 55 });
    expect(r.angle).toBe(-55);
    expect(r.limited).toBe(true);
    expect(trackerRotation(80, 270, { maxAngle: 55 }).angle).toBe(55);
    expect(trackerRotation(80, 90, {}).angle).toBe(-60);
    // Backtracked at 10 degrees elevation the angle is within the limit: no clipping.
    expect(trackerRotation(80, 90, { maxAngle: 55, gcr: 0.35 }).limited).toBe(false);
  });

  it("pvlib's test_backtrack case, worked by hand: zenith 80, azimuth 90, axis azimuth 0, gcr 2/7 -> 27.4283", () => {
    const g = { axisAzimuth: 0, axisTilt: 0, maxAngle: 90 };
    expect(trackerRotation(80, 90, g).angle).toBeCloseTo(80, 10);
    // c = cos(80) / (2/7) = 0.60777; 80 - acos(0.60777) = 80 - 52.5717.
    const b = trackerRotation(80, 90, { ...g, gcr: 2 / 7 });
    expect(b.angle).toBeCloseTo(80 - Math.acos((Math.cos(80 * RAD) * 7) / 2) * DEG, 10);
    expect(b.angle).toBeCloseTo(27.4283, 4);
    // Angle of incidence with backtracking: 80 - 27.4283 = 52.5717 degrees.
    expect(Math.acos(trackerCosIncidence(80, 90, b.angle, g)) * DEG).toBeCloseTo(52.5716, 3);
  });

  it('reproduces the slope-aware validation data of Anderson & Mikofski (NREL/TP-5K00-76626)', () => {
    // A slope facing south at 10 degrees, axis azimuth 195 on it, GCR 0.5; 2019-01-01 08:00..17:00 UTC-5.
    const axisTilt = axisTiltOnSlope(180, 10, 195);
    expect(axisTilt).toBeCloseTo(9.666, 3);
    const bc = crossAxisTilt(180, 10, 195, axisTilt);
    expect(bc).toBeCloseTo(-2.576, 3);
    const rows: [number, number, number, number][] = [
      [2.404287, 122.79177, -84.44, -10.899],
      [11.263058, 133.288729, -72.604, -25.747],
      [18.733558, 145.285552, -59.861, -59.861],
      [24.109076, 158.939435, -45.578, -45.578],
      [26.810735, 173.931802, -28.764, -28.764],
      [26.482495, 189.371536, -8.475, -8.475],
      [23.170447, 204.13681, 15.12, 15.12],
      [17.296785, 217.446538, 39.562, 39.562],
      [9.461862, 229.102218, 61.587, 32.339],
      [0.524817, 239.330401, 79.53, 5.49],
    ];
    for (const [elevation, azimuth, trueTracking, backtracking] of rows) {
      const g = { axisAzimuth: 195, axisTilt, maxAngle: 90, gcr: 0.5, crossAxisTilt: bc };
      const r = trackerRotation(90 - elevation, azimuth, g);
      expect(Math.abs(r.trueTracking - trueTracking)).toBeLessThan(2e-3);
      expect(Math.abs(r.angle - backtracking)).toBeLessThan(2e-3);
      expect(trackerRotation(90 - elevation, azimuth, { ...g, gcr: 0 }).angle).toBeCloseTo(r.trueTracking, 10);
    }
  });

  it('trackerNormal: flat is up; +30 on a north-south axis faces west; a tilted axis leans toward its azimuth', () => {
    const up = trackerNormal(0);
    expect(up[0]).toBeCloseTo(0, 12);
    expect(up[1]).toBeCloseTo(0, 12);
    expect(up[2]).toBeCloseTo(1, 12);
    const w = trackerNormal(30);
    expect(w[0]).toBeCloseTo(-0.5, 12);
    expect(w[2]).toBeCloseTo(Math.cos(30 * RAD), 12);
    const tilted = trackerNormal(0, { axisAzimuth: 180, axisTilt: 20 });
    expect(tilted[1]).toBeCloseTo(-Math.sin(20 * RAD), 12);
    const [e, n, u] = sunVector(30, 90);
    expect([e, n, u].map((v) => Number(v.toFixed(12)))).toEqual([0.5, 0, Number(Math.cos(30 * RAD).toFixed(12))]);
  });
});
