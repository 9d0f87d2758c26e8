/**
 * The simulator's tracker controller and soiling, read over Modbus (modbus-serial) and through
 * sim.state() on an injected clock:
 * - the row follows the ideal angle of components/lib/solar.ts (SPA sun, backtracking from the GCR,
 *   limits) all year; the old sun without the equation of time was minutes, i.e. degrees, off;
 * - tracker-offset: the row tracks a fixed offset off the ideal, and state() tells the truth;
 * - soiling accumulates per simulated day, a cleaning (operation, control socket, CLI) or a washing
 *   rain (a seeded weather event the station reports) resets it; the reference cell stays clean.
 */
import fs from 'node:fs';
import path from 'node:path';
import ModbusRTU from 'modbus-serial';
import { createSiteSimulator, SimulatorError, TRACKER_MAP, UNIT_IDS, WEATHER_MAP, type MapPoint, type SiteSimulator, type SiteSimulatorOptions } from '../../scripts/simulator';
import { controlRequest, startControlServer } from '../../scripts/simulator/control';
import { rainEventOfDay } from '../../scripts/simulator/physics';
import { runSimulator } from '../../scripts/cli/simulator';
import { solarPosition, trackerRotation } from '../../components/lib/solar';
import { mapValue as mapPointValue } from '../../scripts/simulator/testing/modbus-client';
import { tmpDir } from '../helpers/wait';

const MIN = 60_000;
const DAY = 86_400_000;
const SITE = { latitude: 37.0, longitude: -2.5 };

/** The ideal rotation the simulator's controller should hold (its defaults: GCR 0.35, +-55 degrees). */
function ideal(t: number, gcr = 0.35): number {
  const p = solarPosition(t, SITE);
  return trackerRotation(p.zenith, p.azimuth, { axisAzimuth: 180, maxAngle: 55, gcr }).angle;
}

interface Rig {
  sim: SiteSimulator;
  client: ModbusRTU;
  clock: { t: number; now(): number };
}

const rigs: Rig[] = [];
async function rig(start: number, opts: SiteSimulatorOptions = {}): Promise<Rig> {
  const clock = { t: 1_000_000, now(): number { return this.t; } };
  const sim = await createSiteSimulator({ clock, startTime: new Date(start), cloudiness: 0, minUpdateMs: 0, seed: 5, ...opts });
  const client = new ModbusRTU();
  await client.connectTCP('127.0.0.1', { port: sim.port });
  client.setTimeout(2000);
  const r = { sim, client, clock };
  rigs.push(r);
  return r;
}
afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await new Promise<void>((resolve) => r.client.close(() => resolve()));
    await r.sim.close();
  }
});

async function read(r: Rig, unit: number, map: MapPoint[], name: string): Promise<number> {
  r.client.setID(unit);
  const size = Math.max(...map.map((p) => p.address + (p.type === 'string' ? (p.length ?? 1) : p.type.endsWith('32') ? 2 : 1)));
  const regs = (await r.client.readHoldingRegisters(0, size)).data;
  return mapPointValue(regs, name, map);
}

describe('simulator tracker controller', () => {
  it('holds the SPA ideal angle with backtracking through the day, on days with a large equation of time', async () => {
    // 3 November: the equation of time is +16.4 min, the old sun (no equation of time) put the ideal
    // angle 3-6 degrees off in the morning and afternoon. Start before sunrise and walk the day.
    const start = Date.UTC(2025, 10, 3, 5, 0);
    const r = await rig(start);
    let compared = 0;
    let backtracked = 0;
    for (let m = 0; m <= 15 * 60; m += 20) {
      r.clock.t = 1_000_000 + m * MIN;
      const t = start + m * MIN;
      const s = r.sim.state();
      expect(s.time).toBe(new Date(t).toISOString());
      const want = ideal(t);
      expect(Math.abs(s.tracker.idealDeg - want)).toBeLessThan(1e-9);
      expect(Math.abs(s.tracker.actualDeg - want)).toBeLessThan(1e-6);
      expect(s.tracker.fault).toBeNull();
      // The register (0.1 degree) says the same.
      expect(Math.abs((await read(r, UNIT_IDS.tracker, TRACKER_MAP, 'actualAngle')) - want)).toBeLessThan(0.051);
      const p = solarPosition(t, SITE);
      if (p.elevation > 0) {
        compared++;
        const rot = trackerRotation(p.zenith, p.azimuth, { axisAzimuth: 180, maxAngle: 55, gcr: 0.35 });
        if (rot.backtracking) backtracked++;
      } else expect(s.tracker.actualDeg).toBe(0);
    }
    expect(compared).toBeGreaterThan(20);
    // Early morning and late afternoon the rows backtrack.
    expect(backtracked).toBeGreaterThan(2);
  });

  it('backtracks at low sun: |angle| below true tracking, and GCR 0 tracks the sun', async () => {
    const t = Date.UTC(2025, 5, 21, 5, 30); // sun about 8 degrees up in the east
    const a = await rig(t);
    const b = await rig(t, { trackerGcr: 0 });
    const backtracked = a.sim.state().tracker.actualDeg;
    const trueTracking = b.sim.state().tracker.actualDeg;
    expect(backtracked).toBeLessThan(0);
    expect(backtracked).toBeGreaterThan(-40);
    expect(trueTracking).toBe(-55);
    expect(backtracked).toBeCloseTo(ideal(t), 9);
    expect(trueTracking).toBeCloseTo(ideal(t, 0), 9);
  });

  it('tracker-offset: the row tracks N degrees off the ideal; state() tells actual, ideal and the fault', async () => {
    const start = Date.UTC(2025, 5, 21, 9, 0);
    const r = await rig(start);
    const twin = await rig(start);
    const id = r.sim.injectFault({ kind: 'tracker-offset', offsetDeg: 6 });
    for (const m of [1, 30, 60, 120]) {
      r.clock.t = twin.clock.t = 1_000_000 + m * MIN;
      const s = r.sim.state();
      const want = ideal(start + m * MIN);
      expect(s.tracker.idealDeg).toBeCloseTo(want, 9);
      expect(s.tracker.actualDeg).toBeCloseTo(Math.max(-55, Math.min(55, want + 6)), 9);
      expect(s.tracker.offsetDeg).toBe(6);
      expect(s.tracker.fault).toBe('tracker-offset');
      // The controller's registers show what the row does: actual and target both off.
      expect(Math.abs((await read(r, UNIT_IDS.tracker, TRACKER_MAP, 'actualAngle')) - (want + 6))).toBeLessThan(0.051);
      expect(Math.abs((await read(r, UNIT_IDS.tracker, TRACKER_MAP, 'targetAngle')) - (want + 6))).toBeLessThan(0.051);
      // The reference cell rides the row: less beam on it than on the healthy twin's.
      expect(s.weather.poa).toBeLessThan(twin.sim.state().weather.poa);
    }
    expect(() => r.sim.injectFault({ kind: 'tracker-offset', offsetDeg: 45 })).toThrow(SimulatorError);
    r.sim.clearFault(id);
    r.clock.t += MIN;
    expect(r.sim.state().tracker).toMatchObject({ offsetDeg: 0, fault: null });
    expect(r.sim.state().tracker.actualDeg).toBeCloseTo(r.sim.state().tracker.idealDeg, 9);
    r.sim.injectFault({ kind: 'tracker-stuck' });
    expect(r.sim.state().tracker.fault).toBe('tracker-stuck');
  });

  it('refuses tracker and soiling options out of range', async () => {
    await expect(createSiteSimulator({ trackerGcr: 1.5 })).rejects.toThrow(/trackerGcr must be 0..1/);
    await expect(createSiteSimulator({ soilingRatePctPerDay: -1 })).rejects.toThrow(/soilingRatePctPerDay/);
    await expect(createSiteSimulator({ rainChance: 2 })).rejects.toThrow(/rainChance/);
  });
});

describe('simulator soiling', () => {
  // Mid-morning in spring: below clipping, so DC power follows the irradiance on the cells.
  const START = Date.UTC(2025, 3, 1, 8, 0);

  it('accumulates 0.2 %/day, the weather station stays clean, a cleaning resets one inverter or all', async () => {
    const r = await rig(START);
    const clean = await rig(START, { soilingRatePctPerDay: 0 });
    expect(r.sim.state().inverters.map((i) => i.soilingRatio)).toEqual([1, 1, 1]);
    // Ten simulated days later, same time of day.
    r.clock.t = clean.clock.t = 1_000_000 + 10 * DAY;
    const s = r.sim.state();
    const c = clean.sim.state();
    for (const inv of s.inverters) {
      expect(inv.soilingRatio).toBeCloseTo(0.98, 9);
      expect(inv.soiling).toMatchObject({ accumulated: expect.closeTo(0.02, 9) as number, faultLoss: 0, since: new Date(START).toISOString() });
    }
    // The reference cell does not soil: the same POA as the plant that never soils.
    expect(s.weather.poa).toBe(c.weather.poa);
    expect(await read(r, UNIT_IDS.weather, WEATHER_MAP, 'poaPrecise')).toBeCloseTo(c.weather.poa, 1);
    // The strings see 2 % less light: about 2 % less DC power (and a little cooler cells).
    const ratio = s.inverters[0].dcW / c.inverters[0].dcW;
    expect(ratio).toBeGreaterThan(0.975);
    expect(ratio).toBeLessThan(0.985);

    // A soiling fault stacks on top.
    r.sim.injectFault({ kind: 'soiling', unit: 3, loss: 0.1 });
    expect(r.sim.state().inverters[2].soilingRatio).toBeCloseTo(0.98 * 0.9, 9);

    r.sim.operate({ kind: 'clean', unit: 2 });
    let after = r.sim.state();
    expect(after.inverters.map((i) => Number(i.soilingRatio.toFixed(6)))).toEqual([0.98, 1, Number((0.98 * 0.9).toFixed(6))]);
    expect(after.inverters[1].soiling.cleanedAt).toBe(after.time);
    r.clock.t += DAY;
    after = r.sim.state();
    expect(after.inverters[1].soilingRatio).toBeCloseTo(0.998, 9);
    r.sim.operate({ kind: 'clean' });
    // Cleaning leaves the fault (dirt that does not wash off) in place.
    expect(r.sim.state().inverters.map((i) => i.soilingRatio)).toEqual([1, 1, 0.9]);
    expect(() => r.sim.operate({ kind: 'clean', unit: 100 })).toThrow(/clean: unit is an inverter's unit id \(1..3\)/);
  });

  it('is cleaned through the control socket and `dcmms-edge simulator clean`', async () => {
    const r = await rig(START);
    r.clock.t += 5 * DAY;
    const dir = tmpDir('/tmp/simclean-');
    const ctl = await startControlServer(r.sim, path.join(dir, 'ctl.sock'));
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(r.sim.state().inverters[0].soilingRatio).toBeCloseTo(0.99, 9);
      expect(await controlRequest(ctl.path, 'POST', '/operate', { kind: 'clean', unit: 1 })).toEqual({ status: 200, body: { ok: true } });
      expect(r.sim.state().inverters.map((i) => i.soilingRatio)).toEqual([1, expect.closeTo(0.99, 9), expect.closeTo(0.99, 9)]);
      expect((await controlRequest(ctl.path, 'POST', '/operate', { kind: 'clean', unit: 7 })).status).toBe(400);
      expect(await runSimulator(['clean', '--control', ctl.path])).toBe(0);
      expect(r.sim.state().inverters.map((i) => i.soilingRatio)).toEqual([1, 1, 1]);
      r.clock.t += DAY;
      expect(await runSimulator(['clean', '--control', ctl.path, '--unit', '3'])).toBe(0);
      expect(r.sim.state().inverters.map((i) => Number(i.soilingRatio.toFixed(6)))).toEqual([0.998, 0.998, 1]);
    } finally {
      spy.mockRestore();
      await ctl.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a seeded rain of 2 mm or more washes the modules: the weather station reports it, the sky is overcast meanwhile', async () => {
    const seed = 5;
    const opts = { cloudiness: 0.3, seed };
    // The first washing rain in daylight after the start, from the simulator's own weather model.
    const day0 = Math.floor(START / DAY);
    let ev: ReturnType<typeof rainEventOfDay>;
    for (let d = day0 + 3; d < day0 + 200 && !ev; d++) {
      const e = rainEventOfDay(seed, d, 0.1);
      if (e && e.rateMmH * ((e.endMs - e.startMs) / 3600000) >= 3 && new Date(e.startMs).getUTCHours() >= 8 && new Date(e.startMs).getUTCHours() < 14) ev = e;
    }
    expect(ev).toBeDefined();
    const { startMs, endMs, rateMmH } = ev!;
    const r = await rig(START, opts);
    const dry = await rig(START, { ...opts, rainChance: 0 });
    const at = async (t: number): Promise<void> => {
      r.clock.t = dry.clock.t = 1_000_000 + (t - START);
      r.sim.state();
      dry.sim.state();
    };
    // Walk to just before the rain in steps the plant integrates anyway (a minute at most per step).
    await at(startMs - MIN);
    const before = r.sim.state();
    // Dirt since the start or the last earlier rain of 2 mm or more.
    let since = START;
    for (let d = day0; d < Math.floor(startMs / DAY); d++) {
      const e = rainEventOfDay(seed, d, 0.1);
      const w = e ? e.startMs + (2 / e.rateMmH) * 3600000 : Infinity;
      if (e && w <= e.endMs && w > START) since = w;
    }
    expect(new Date(before.inverters[0].soiling.since).getTime()).toBeCloseTo(since, -1);
    expect(before.inverters[0].soilingRatio).toBeCloseTo(1 - (0.002 * (startMs - MIN - since)) / DAY, 9);
    // Without rain the dirt keeps growing from the start.
    expect(dry.sim.state().inverters[0].soilingRatio).toBeCloseTo(1 - (0.002 * (startMs - MIN - START)) / DAY, 9);
    expect(before.weather.rainMmH).toBe(0);
    // Raining: the station reports the rate (0.1 mm/h registers), the sky is overcast.
    await at(startMs + 10 * MIN);
    const wet = r.sim.state();
    expect(wet.weather.rainMmH).toBeCloseTo(rateMmH, 9);
    expect(wet.weather.rainTodayMm).toBeCloseTo((rateMmH * 10) / 60, 9);
    expect(Math.abs((await read(r, UNIT_IDS.weather, WEATHER_MAP, 'rainRate')) - rateMmH)).toBeLessThan(0.051);
    expect(wet.weather.cloudTransmittance).toBe(0.25);
    expect(wet.weather.ghi).toBeLessThan(dry.sim.state().weather.ghi + 1e-9);
    // Once 2 mm have fallen the modules are clean; afterwards soiling starts again from there.
    const washedAt = startMs + (2 / rateMmH) * 3600000;
    await at(Math.min(endMs, washedAt + 30 * MIN));
    const washed = r.sim.state();
    expect(new Date(washed.inverters[0].soiling.since).getTime()).toBeCloseTo(washedAt, -1);
    expect(washed.inverters[0].soilingRatio).toBeGreaterThan(0.9999);
    await at(endMs + 2 * 3600000);
    const later = r.sim.state();
    expect(later.weather.rainMmH).toBe(0);
    const local = new Date(endMs).getUTCHours() + SITE.longitude / 15 < 22;
    if (local) expect((await read(r, UNIT_IDS.weather, WEATHER_MAP, 'rainToday')) * 1).toBeCloseTo(rateMmH * ((endMs - startMs) / 3600000), 1);
    // The dry twin never got washed.
    expect(dry.sim.state().inverters[0].soiling.since).toBe(new Date(START).toISOString());
  });
});
