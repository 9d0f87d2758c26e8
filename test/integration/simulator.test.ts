/**
 * The site simulator read and written with modbus-serial's client (a real client written by
 * others) on loopback, with an injected clock: SunSpec discovery, plausible physics, energy
 * counters, curtailment and Conn writes, every fault, communication loss and the time scale.
 */
import type { DecodedModel } from '../../components/modbus-adapter/sunspec';
import { UNIT_IDS, WEATHER_MAP, TRACKER_MAP, type MapPoint } from '../../scripts/simulator';
import { connect, closeClient, inverter, mapValue as mapPointValue, modbusError, readSunSpec, rig, stop, writePoint, type Rig } from '../../scripts/simulator/testing/modbus-client';

const NOON = Date.UTC(2025, 5, 21, 12, 10, 0); // 12:10 UTC, solar noon at longitude -2.5
const MORNING = Date.UTC(2025, 5, 21, 8, 0, 0);

const mapValue = (regs: number[], name: string, map: MapPoint[] = WEATHER_MAP): number => mapPointValue(regs, name, map);

describe('site simulator over Modbus TCP', () => {
  let r: Rig;
  afterEach(async () => {
    if (r) await stop(r);
  });

  it('presents SunSpec inverters and a meter: marker at 40000, chain to 0xFFFF, exceptions elsewhere', async () => {
    r = await rig(NOON);
    expect([...(await readSunSpec(r.client, 1)).keys()]).toEqual([1, 103, 120, 123, 160]);
    expect([...(await readSunSpec(r.client, UNIT_IDS.meter)).keys()]).toEqual([1, 203]);
    const inv = await inverter(r.client, 2);
    expect(inv['1'].points.SN.value).toBe('INV-02');
    expect(inv['160'].groups.module).toHaveLength(4);
    r.client.setID(1);
    expect((await modbusError(r.client.readHoldingRegisters(0, 2))).modbusCode).toBe(2); // no image at base 0
    r.client.setID(77);
    expect((await modbusError(r.client.readHoldingRegisters(40000, 2))).modbusCode).toBe(11); // gateway: no such unit
    expect(r.sim.deviceConfig().devices.map((d) => d.unitId)).toEqual([1, 2, 3, 100, 101, 102, 103, 111, 112, 113]);
  });

  it('produces plausible values at noon and none at night', async () => {
    r = await rig(NOON);
    const noon = await inverter(r.client);
    expect(noon['103'].points.W.value as number).toBeGreaterThan(45000);
    expect(noon['103'].points.W.value as number).toBeLessThanOrEqual(60000);
    expect(noon['103'].points.St.symbol).toBe('MPPT');
    expect(noon['103'].points.Hz.value as number).toBeCloseTo(50, 0);
    expect(noon['103'].points.DCV.value as number).toBeGreaterThan(450);
    const dcw = noon['103'].points.DCW.value as number;
    expect((noon['103'].points.W.value as number) / dcw).toBeGreaterThan(0.94); // inverter efficiency
    expect((noon['103'].points.W.value as number) / dcw).toBeLessThan(0.99);
    expect(noon['160'].groups.module.every((m) => (m.DCA.value as number) > 15)).toBe(true);
    r.client.setID(UNIT_IDS.weather);
    const ws = (await r.client.readHoldingRegisters(0, 24)).data;
    expect(mapValue(ws, 'poa')).toBeGreaterThan(850);
    expect(mapValue(ws, 'moduleTemp')).toBeGreaterThan(mapValue(ws, 'ambientTemp') + 10);
    expect(mapValue(ws, 'poaPrecise')).toBeCloseTo(r.sim.state().weather.poa, 0);
    const meter = await readSunSpec(r.client, UNIT_IDS.meter);
    expect(meter.get(203)!.model.points.W.value as number).toBeGreaterThan(100000);

    r.clock.t += 11 * 3600e3; // 23:10 UTC
    const night = await inverter(r.client);
    expect(night['103'].points.W.value).toBe(0);
    expect(night['103'].points.St.symbol).toBe('SLEEPING');
    expect(night['160'].groups.module.every((m) => m.DCA.value === 0)).toBe(true);
    r.client.setID(UNIT_IDS.weather);
    expect(mapValue((await r.client.readHoldingRegisters(0, 24)).data, 'poa')).toBe(0);
    const m = (await readSunSpec(r.client, UNIT_IDS.meter)).get(203)!.model;
    expect(m.points.W.value).toBe(-1500); // the site's own load, imported
  });

  it('keeps energy counters monotonic and consistent with power', async () => {
    r = await rig(MORNING);
    const readings: number[] = [];
    for (let i = 0; i < 6; i++) {
      readings.push((await inverter(r.client))['103'].points.WH.value as number);
      r.clock.t += 10 * 60e3;
    }
    for (let i = 1; i < readings.length; i++) expect(readings[i]).toBeGreaterThan(readings[i - 1]);
    const s = r.sim.state().inverters[0];
    // 10 minutes at roughly the current power, in Wh.
    const step = readings[5] - readings[4];
    expect(step).toBeGreaterThan((s.acW / 6) * 0.8);
    expect(step).toBeLessThan((s.acW / 6) * 1.2);
  });

  it('obeys curtailment (WMaxLimPct, WMaxLim_Ena) and Conn writes, and refuses bad ones', async () => {
    r = await rig(NOON);
    await writePoint(r.client, 1, 123, 'WMaxLimPct', [400]); // 40.0 % at WMaxLimPct_SF -1
    expect((await inverter(r.client))['103'].points.W.value as number).toBeGreaterThan(45000); // not enabled yet
    await writePoint(r.client, 1, 123, 'WMaxLim_Ena', [1]);
    const cut = await inverter(r.client);
    expect(cut['103'].points.W.value).toBe(24000);
    expect(cut['103'].points.St.symbol).toBe('THROTTLED');
    expect(cut['123'].points.WMaxLimPct.value).toBe(40);
    expect((await inverter(r.client, 2))['103'].points.W.value as number).toBeGreaterThan(45000);
    expect((await modbusError(writePoint(r.client, 1, 123, 'WMaxLimPct', [1500]))).modbusCode).toBe(3); // 150 %
    expect((await modbusError(writePoint(r.client, 1, 103, 'W', [0]))).modbusCode).toBe(2); // read-only
    await writePoint(r.client, 1, 123, 'Conn', [0]);
    const off = await inverter(r.client);
    expect(off['103'].points.W.value).toBe(0);
    expect(off['103'].points.St.symbol).toBe('STANDBY');
    expect(off['123'].points.Conn.symbol).toBe('DISCONNECT');
    await writePoint(r.client, 1, 123, 'Conn', [1]);
    await writePoint(r.client, 1, 123, 'WMaxLim_Ena', [0]);
    expect((await inverter(r.client))['103'].points.W.value as number).toBeGreaterThan(45000);
    expect(r.sim.state().inverters[0]).toMatchObject({ connected: true, limitPct: 40, limitEnabled: false });
  });

  it('injects and clears each fault', async () => {
    r = await rig(MORNING);
    const before = await inverter(r.client);
    const dca = (m: Record<string, DecodedModel>, i: number): number => m['160'].groups.module[i].DCA.value as number;

    const sf = r.sim.injectFault({ kind: 'string-fault', unit: 1, string: 2 });
    const s = await inverter(r.client);
    expect(dca(s, 1)).toBeLessThan(dca(s, 0) * 0.15);
    expect(dca(s, 2)).toBeGreaterThan(dca(s, 0) * 0.9);
    expect(r.sim.clearFault(sf)).toBe(1);
    expect(dca(await inverter(r.client), 1)).toBeGreaterThan(dca(before, 0) * 0.9);

    r.sim.injectFault({ kind: 'over-temperature', unit: 1 });
    const hot = await inverter(r.client);
    expect(hot['103'].points.TmpSnk.value as number).toBeGreaterThan(75);
    expect(hot['103'].points.Evt1.bits).toContain('OVER_TEMP');
    r.sim.clearFault();

    r.sim.injectFault({ kind: 'soiling', unit: 2, loss: 0.3 });
    const clean = (await inverter(r.client, 1))['103'].points.DCW.value as number;
    const dirty = (await inverter(r.client, 2))['103'].points.DCW.value as number;
    expect(dirty / clean).toBeLessThan(0.78);
    r.sim.clearFault();

    r.sim.injectFault({ kind: 'ground-fault', unit: 3 });
    const gf = await inverter(r.client, 3);
    expect(gf['103'].points.Evt1.bits).toEqual(['GROUND_FAULT']);
    expect(gf['103'].points.St.symbol).toBe('FAULT');
    expect(gf['103'].points.W.value).toBe(0);
    expect(gf['160'].points.Evt.bits).toEqual(['GROUND_FAULT']);
    r.sim.clearFault();
    expect((await inverter(r.client, 3))['103'].points.Evt1.bits).toEqual([]);

    const other0 = (await inverter(r.client, 2))['103'].points.WH.value as number;
    r.sim.injectFault({ kind: 'frozen', unit: 1 });
    const f1 = await inverter(r.client, 1);
    r.clock.t += 30 * 60e3;
    const f2 = await inverter(r.client, 1);
    expect(f2['103'].points.W.value).toBe(f1['103'].points.W.value);
    expect(f2['103'].points.WH.value).toBe(f1['103'].points.WH.value);
    expect((await inverter(r.client, 2))['103'].points.WH.value as number).toBeGreaterThan(other0);
    r.sim.clearFault();
    expect((await inverter(r.client, 1))['103'].points.WH.value as number).toBeGreaterThan(f1['103'].points.WH.value as number);

    expect(() => r.sim.injectFault({ kind: 'string-fault', unit: 100, string: 1 })).toThrow(/not an inverter/);
  });

  it('stops answering on communication loss, then recovers', async () => {
    r = await rig(NOON);
    r.client.setTimeout(300);
    const id = r.sim.injectFault({ kind: 'comm-loss', unit: 2 });
    r.client.setID(2);
    const err = await modbusError(r.client.readHoldingRegisters(40000, 2));
    expect(err.message).toMatch(/Timed out/);
    expect(err.modbusCode).toBeUndefined();
    const other = await connect(r.sim);
    other.setID(1);
    expect((await other.readHoldingRegisters(40000, 2)).data).toEqual([0x5375, 0x6e53]);
    r.sim.clearFault(id);
    other.setID(2);
    expect((await other.readHoldingRegisters(40000, 2)).data).toEqual([0x5375, 0x6e53]);
    await closeClient(other);
  });

  it('runs the tracker, the I/O module and the main breaker relay', async () => {
    r = await rig(MORNING);
    r.client.setID(UNIT_IDS.tracker);
    const t0 = (await r.client.readHoldingRegisters(0, 10)).data;
    expect(mapValue(t0, 'actualAngle', TRACKER_MAP)).toBeLessThan(-20); // facing east in the morning
    await r.client.writeRegister(2, 2); // stow
    r.clock.t += 10 * 60e3;
    const t1 = (await r.client.readHoldingRegisters(0, 10)).data;
    expect(mapValue(t1, 'targetAngle', TRACKER_MAP)).toBe(0);
    expect(mapValue(t1, 'actualAngle', TRACKER_MAP)).toBe(0);
    expect(t1[4] & 2).toBe(2); // stowed bit
    expect((await modbusError(r.client.writeRegister(2, 7))).modbusCode).toBe(3);

    r.client.setID(UNIT_IDS.io);
    expect((await r.client.readDiscreteInputs(0, 8)).data.slice(0, 4)).toEqual([true, true, false, true]);
    await r.client.writeCoil(0, true); // trip the main breaker
    expect((await r.client.readCoils(0, 8)).data[0]).toBe(true);
    expect((await r.client.readDiscreteInputs(0, 8)).data[3]).toBe(false);
    const tripped = await inverter(r.client, 1);
    expect(tripped['103'].points.W.value).toBe(0);
    expect(tripped['103'].points.Evt1.bits).toContain('GRID_DISCONNECT');
    r.sim.injectFault({ kind: 'digital-input', input: 'fireAlarm', value: true });
    r.client.setID(UNIT_IDS.io);
    expect((await r.client.readDiscreteInputs(0, 8)).data[2]).toBe(true);
  });

  it('scales time: an hour of real time at 24x is a simulated day', async () => {
    r = await rig(NOON, { timeScale: 24 });
    const t0 = r.sim.simTime().getTime();
    const wh0 = (await inverter(r.client))['103'].points.WH.value as number;
    r.clock.t += 3600e3;
    expect(r.sim.simTime().getTime() - t0).toBe(24 * 3600e3);
    expect(r.sim.state().time).toBe(new Date(NOON + 24 * 3600e3).toISOString());
    const wh1 = (await inverter(r.client))['103'].points.WH.value as number;
    // A clear June day of a 60 kW inverter with 72 kWp on a tracker in southern Spain: 10-14 full-load hours.
    expect(wh1 - wh0).toBeGreaterThan(600e3);
    expect(wh1 - wh0).toBeLessThan(840e3);
  });
});
