/**
 * The simulated I/O module as site automation uses it, read and written with modbus-serial's client
 * (a real client written by others) on an injected clock: the main breaker's shunt trip (relay 0)
 * opens the breaker and it stays open until closed again (relay 3, or by hand on site), plain alarm
 * relays (horn, beacon) that change nothing but their own state, and inputs driven by faults.
 */
import type ModbusRTU from 'modbus-serial';
import path from 'node:path';
import fs from 'node:fs';
import { createSiteSimulator, IO_INPUTS, IO_RELAYS, SUNSPEC_BASE, UNIT_IDS, type SiteSimulator } from '../../scripts/simulator';
import { controlRequest, startControlServer } from '../../scripts/simulator/control';
import { closeClient, connect, inverter, readSunSpec } from '../../scripts/simulator/testing/modbus-client';
import { tmpDir } from '../helpers/wait';

const NOON = Date.UTC(2025, 5, 21, 12, 10, 0);
const MINUTE = 60e3;
const IO = UNIT_IDS.io;
const relay = (name: (typeof IO_RELAYS)[number]): number => IO_RELAYS.indexOf(name);
const input = (name: (typeof IO_INPUTS)[number]): number => IO_INPUTS.indexOf(name);

describe('I/O module', () => {
  const clock = {
    t: 1_000_000,
    now(): number {
      return this.t;
    },
  };
  let sim: SiteSimulator;
  let twin: SiteSimulator;
  let a: ModbusRTU;
  let b: ModbusRTU;

  beforeEach(async () => {
    const opts = { clock, startTime: new Date(NOON), cloudiness: 0, minUpdateMs: 0, seed: 3 };
    [sim, twin] = await Promise.all([createSiteSimulator(opts), createSiteSimulator(opts)]);
    [a, b] = await Promise.all([connect(sim), connect(twin)]);
  });

  afterEach(async () => {
    await Promise.all([closeClient(a), closeClient(b)]);
    await Promise.all([sim.close(), twin.close()]);
  });

  async function io(client: ModbusRTU): Promise<{ relays: boolean[]; inputs: boolean[] }> {
    client.setID(IO);
    return { relays: (await client.readCoils(0, 8)).data.slice(0, 8), inputs: (await client.readDiscreteInputs(0, 8)).data.slice(0, 8) };
  }
  async function setRelay(name: (typeof IO_RELAYS)[number], on: boolean): Promise<void> {
    a.setID(IO);
    await a.writeCoil(relay(name), on);
  }
  const meter = async (client: ModbusRTU): Promise<Record<string, number>> => {
    const m = (await readSunSpec(client, UNIT_IDS.meter)).get(203)!.model.points;
    return { w: m.W.value as number, imp: m.TotWhImp.value as number, exp: m.TotWhExp.value as number };
  };

  it('breakerTrip opens the main breaker and it stays open when the relay drops; breakerClose closes it, never against an energized trip', async () => {
    expect(IO_RELAYS.slice(0, 4)).toEqual(['breakerTrip', 'alarmHorn', 'beacon', 'breakerClose']);
    const normal = await io(a);
    expect(normal.relays).toEqual([false, false, false, false, false, false, false, false]);
    expect([normal.inputs[input('breakerClosed')], normal.inputs[input('upsOnBattery')]]).toEqual([true, false]);

    await setRelay('breakerTrip', true);
    const tripped = await io(a);
    expect([tripped.inputs[input('breakerClosed')], tripped.inputs[input('upsOnBattery')]]).toEqual([false, true]);
    for (const unit of [1, 2, 3]) {
      const inv = await inverter(a, unit);
      expect([inv['103'].points.W.value, inv['103'].points.St.symbol, inv['103'].points.Evt1.bits]).toEqual([0, 'STANDBY', ['GRID_DISCONNECT']]);
    }
    // No power flows through an open breaker: the meter reads 0 and counts nothing.
    const m0 = await meter(a);
    expect(m0.w).toBe(0);
    clock.t += 10 * MINUTE;
    await meter(b);
    expect(await meter(a)).toEqual(m0);

    // A shunt trip latches: dropping the relay (a pulse) leaves the breaker open.
    await setRelay('breakerTrip', false);
    expect((await io(a)).inputs[input('breakerClosed')]).toBe(false);
    expect((await inverter(a, 1))['103'].points.W.value).toBe(0);
    expect(sim.state().io.breakerClosed).toBe(false);

    // Trip-free: a close command while the trip relay is energized does nothing.
    await setRelay('breakerTrip', true);
    await setRelay('breakerClose', true);
    expect((await io(a)).inputs[input('breakerClosed')]).toBe(false);
    // The close coil acts on its rising edge: releasing the trip with the close relay still on does not close it.
    await setRelay('breakerTrip', false);
    expect((await io(a)).inputs[input('breakerClosed')]).toBe(false);
    await setRelay('breakerClose', false);
    await setRelay('breakerClose', true);
    const closed = await io(a);
    expect([closed.inputs[input('breakerClosed')], closed.inputs[input('upsOnBattery')]]).toEqual([true, false]);
    const back = await inverter(a, 1);
    expect(back['103'].points.St.symbol).toBe('MPPT');
    expect(back['103'].points.W.value as number).toBeGreaterThan(45000);
    expect((await meter(a)).w).toBeGreaterThan(100000);
    await setRelay('breakerClose', false);
    expect(sim.state().io.breakerClosed).toBe(true);
  });

  it('alarmHorn and beacon are plain relays: their state reads back, and nothing else in the plant changes', async () => {
    a.setID(IO);
    await a.writeCoils(relay('alarmHorn'), [true, true]); // FC 15: horn and beacon at once
    const on = await io(a);
    expect(on.relays).toEqual([false, true, true, false, false, false, false, false]);
    expect(sim.state().io.relays).toMatchObject({ breakerTrip: false, alarmHorn: true, beacon: true });
    expect(on.inputs).toEqual((await io(b)).inputs);
    clock.t += MINUTE;
    for (const unit of [1, 2, 3, UNIT_IDS.meter]) {
      a.setID(unit);
      b.setID(unit);
      // The whole SunSpec image, bit for bit, against the untouched twin.
      const len = async (c: ModbusRTU): Promise<number[]> => (await c.readHoldingRegisters(SUNSPEC_BASE, 100)).data;
      expect(await len(a)).toEqual(await len(b));
    }
    await setRelay('alarmHorn', false);
    await setRelay('beacon', false);
    expect((await io(a)).relays).toEqual((await io(b)).relays);
  });

  it('fireAlarm follows a digital-input fault and its clear; the breaker is not a fault and stays as operated', async () => {
    const id = sim.injectFault({ kind: 'digital-input', input: 'fireAlarm', value: true });
    expect((await io(a)).inputs[input('fireAlarm')]).toBe(true);
    await setRelay('breakerTrip', true);
    await setRelay('breakerTrip', false);
    expect(sim.clearFault(id)).toBe(1);
    const after = await io(a);
    expect([after.inputs[input('fireAlarm')], after.inputs[input('breakerClosed')]]).toEqual([false, false]);
  });
});

describe('main breaker by hand (control socket)', () => {
  it('opens and closes the breaker as a technician at the switchgear would; refuses to close against an energized trip', async () => {
    const dir = tmpDir('/tmp/simio-');
    const sim = await createSiteSimulator({ startTime: new Date(NOON), cloudiness: 0 });
    const ctl = await startControlServer(sim, path.join(dir, 'ctl.sock'));
    const client = await connect(sim);
    const breaker = async (): Promise<boolean> => ((await controlRequest(ctl.path, 'GET', '/state')).body as { io: { breakerClosed: boolean } }).io.breakerClosed;
    try {
      expect(await controlRequest(ctl.path, 'POST', '/operate', { kind: 'breaker', closed: false })).toEqual({ status: 200, body: { ok: true } });
      expect(await breaker()).toBe(false);
      expect(sim.state().inverters[0].acW).toBe(0);
      expect((await controlRequest(ctl.path, 'POST', '/operate', { kind: 'breaker', closed: true })).status).toBe(200);
      expect(await breaker()).toBe(true);
      client.setID(IO);
      await client.writeCoil(0, true);
      const refused = await controlRequest(ctl.path, 'POST', '/operate', { kind: 'breaker', closed: true });
      expect(refused).toEqual({ status: 400, body: { error: expect.stringMatching(/breakerTrip relay is energized/) } });
      expect(await breaker()).toBe(false);
      expect((await controlRequest(ctl.path, 'POST', '/operate', { kind: 'breaker', closed: 'yes' })).status).toBe(400);
    } finally {
      await closeClient(client);
      await ctl.close();
      await sim.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
