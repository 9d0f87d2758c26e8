/**
 * SunSpec model 123 (Immediate Controls) timers as the simulated inverters carry them out, read and
 * written with modbus-serial's client (a real client written by others) on an injected clock, and
 * through the ModbusAdapter on a fast time scale: a revert time (`*_RvrtTms`) ends a curtailment or
 * a disconnect by itself unless the command is written again, a time window (`*_WinTms`) delays a
 * change to a random instant within it, a ramp time (`WMaxLimPct_RmpTms`) moves the limit linearly.
 */
import type ModbusRTU from 'modbus-serial';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import type { ControlCommand, ControlResult, TelemetryMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import type { DecodedModel } from '../../components/modbus-adapter/sunspec';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { closeClient, connect, inverter, rig, stop, writePoint, type Rig } from '../../scripts/simulator/testing/modbus-client';

const NOON = Date.UTC(2025, 5, 21, 12, 10, 0); // clear sky: the inverters clip at 60 kW
const S = 1000;

const w = (m: Record<string, DecodedModel>): number => m['103'].points.W.value as number;
const p123 = (m: Record<string, DecodedModel>, name: string): unknown => m['123'].points[name].symbol ?? m['123'].points[name].value;

describe('model 123 timers', () => {
  let r: Rig;
  afterEach(async () => {
    if (r) await stop(r);
  });

  /** What the gateway's curtail does: percent (WMaxLimPct_SF -1: tenths), then enable. */
  async function curtail(unit: number, tenths: number): Promise<void> {
    await writePoint(r.client, unit, 123, 'WMaxLimPct', [tenths]);
    await writePoint(r.client, unit, 123, 'WMaxLim_Ena', [1]);
  }

  it('timers are implemented and 0 (no window, no revert, no ramp) until written', async () => {
    r = await rig(NOON);
    const m = await inverter(r.client);
    for (const name of ['Conn_WinTms', 'Conn_RvrtTms', 'WMaxLimPct_WinTms', 'WMaxLimPct_RvrtTms', 'WMaxLimPct_RmpTms', 'OutPFSet_WinTms', 'OutPFSet_RvrtTms', 'OutPFSet_RmpTms']) {
      expect([name, m['123'].points[name].implemented, m['123'].points[name].value]).toEqual([name, true, 0]);
    }
    await curtail(1, 400);
    r.clock.t += 3600 * S; // no revert time: curtailed for good
    expect(w(await inverter(r.client))).toBe(24000);
  });

  it('a curtailment with WMaxLimPct_RvrtTms 3 s reverts by itself 3 simulated seconds after the last write', async () => {
    r = await rig(NOON);
    expect(w(await inverter(r.client))).toBeGreaterThan(55000);
    await writePoint(r.client, 1, 123, 'WMaxLimPct_RvrtTms', [3]);
    await curtail(1, 400);
    const cut = await inverter(r.client);
    expect([w(cut), cut['103'].points.St.symbol, p123(cut, 'WMaxLim_Ena')]).toEqual([24000, 'THROTTLED', 'ENABLED']);
    expect(r.sim.state().inverters[0].controls.revertAt.limit).toBe(new Date(NOON + 3 * S).toISOString());

    r.clock.t += 2.9 * S;
    expect(w(await inverter(r.client))).toBe(24000);
    r.clock.t += 0.1 * S; // 3 s: the gateway went quiet, the limit is gone
    const back = await inverter(r.client);
    expect([p123(back, 'WMaxLim_Ena'), back['103'].points.St.symbol]).toEqual(['DISABLED', 'MPPT']);
    expect(w(back)).toBeGreaterThan(55000);
    // The setpoint and the timer stay as written: only the enable reverted.
    expect([p123(back, 'WMaxLimPct'), p123(back, 'WMaxLimPct_RvrtTms')]).toEqual([40, 3]);
    expect(r.sim.state().inverters[0]).toMatchObject({ limitEnabled: false, limitPct: 40, controls: { revertAt: {} } });
    // Other inverters never were curtailed.
    expect(w(await inverter(r.client, 2))).toBeGreaterThan(55000);

    // A refresh (the command written again) restarts the timer.
    await curtail(1, 400);
    r.clock.t += 2 * S;
    await writePoint(r.client, 1, 123, 'WMaxLim_Ena', [1]);
    r.clock.t += 2 * S; // 4 s after the first write, 2 s after the refresh
    expect(w(await inverter(r.client))).toBe(24000);
    r.clock.t += 1 * S;
    expect(w(await inverter(r.client))).toBeGreaterThan(55000);
  });

  it('on a time scale: 3 simulated seconds are 50 ms of the clock at 60x', async () => {
    r = await rig(NOON, { timeScale: 60 });
    await writePoint(r.client, 1, 123, 'WMaxLimPct_RvrtTms', [3]);
    await curtail(1, 400);
    r.clock.t += 49;
    expect(w(await inverter(r.client))).toBe(24000);
    r.clock.t += 1;
    expect(w(await inverter(r.client))).toBeGreaterThan(55000);
  });

  it('Conn DISCONNECT with Conn_RvrtTms reconnects by itself; CONNECT has nothing to revert', async () => {
    r = await rig(NOON);
    await writePoint(r.client, 2, 123, 'Conn_RvrtTms', [5]);
    await writePoint(r.client, 2, 123, 'Conn', [0]);
    const off = await inverter(r.client, 2);
    expect([w(off), off['103'].points.St.symbol, p123(off, 'Conn')]).toEqual([0, 'STANDBY', 'DISCONNECT']);
    r.clock.t += 4.9 * S;
    expect(w(await inverter(r.client, 2))).toBe(0);
    r.clock.t += 0.1 * S;
    const on = await inverter(r.client, 2);
    expect([p123(on, 'Conn'), on['103'].points.St.symbol]).toEqual(['CONNECT', 'MPPT']);
    expect(w(on)).toBeGreaterThan(55000);
    await writePoint(r.client, 2, 123, 'Conn', [1]);
    expect(r.sim.state().inverters[1].controls.revertAt).toEqual({});
  });

  it('energy counts the curtailed seconds as curtailed: the revert happens at its instant, not at the next read', async () => {
    r = await rig(NOON);
    const wh0 = (await inverter(r.client))['103'].points.WH.value as number;
    await writePoint(r.client, 1, 123, 'WMaxLimPct_RvrtTms', [630]);
    await curtail(1, 0); // 0 %: nothing for 10.5 minutes, then full output
    r.clock.t += 20 * 60 * S; // one read twenty minutes later
    const wh1 = (await inverter(r.client))['103'].points.WH.value as number;
    // 9.5 minutes at 60 kW: 9.5 kWh; not 0 (reverted at the read), nor 9 kWh (reverted at the end of
    // the plant's one-minute integration step), nor 20 kWh (never curtailed).
    expect(wh1 - wh0).toBeGreaterThan(9300);
    expect(wh1 - wh0).toBeLessThan(9700);
  });

  it('a time window delays a change to a random instant within it, the same for twins; the revert counts from that instant', async () => {
    r = await rig(NOON);
    const twin = await createSiteSimulator({ clock: r.clock, startTime: new Date(NOON), cloudiness: 0, minUpdateMs: 0, seed: 7 });
    const c = await connect(twin);
    try {
      const t0 = r.sim.simTime().getTime();
      const command = async (client: ModbusRTU, sim: SiteSimulator): Promise<number> => {
        await writePoint(client, 1, 123, 'WMaxLimPct_WinTms', [60]);
        await writePoint(client, 1, 123, 'WMaxLimPct_RvrtTms', [3]);
        await writePoint(client, 1, 123, 'WMaxLimPct', [400]);
        await writePoint(client, 1, 123, 'WMaxLim_Ena', [1]);
        return Date.parse(sim.state().inverters[0].controls.pending.limit!);
      };
      const at = await command(r.client, r.sim);
      expect(await command(c, twin)).toBe(at);
      expect(at).toBeGreaterThan(t0);
      expect(at).toBeLessThanOrEqual(t0 + 60 * S);
      // The registers read back as written at once (a gateway's read-back check passes); the output follows later.
      const held = await inverter(r.client);
      expect([p123(held, 'WMaxLimPct'), p123(held, 'WMaxLim_Ena')]).toEqual([40, 'ENABLED']);
      expect(w(held)).toBeGreaterThan(55000);
      r.clock.t += at - t0 - 1;
      expect(w(await inverter(r.client))).toBeGreaterThan(55000);
      r.clock.t += 1;
      expect(w(await inverter(r.client))).toBe(24000);
      expect(r.sim.state().inverters[0].controls.revertAt.limit).toBe(new Date(at + 3 * S).toISOString());
      r.clock.t += 3 * S;
      expect(w(await inverter(r.client))).toBeGreaterThan(55000);
    } finally {
      await closeClient(c);
      await twin.close();
    }
  });

  it('a Conn time window delays the disconnect too', async () => {
    r = await rig(NOON);
    const t0 = r.sim.simTime().getTime();
    await writePoint(r.client, 3, 123, 'Conn_WinTms', [30]);
    await writePoint(r.client, 3, 123, 'Conn', [0]);
    const at = Date.parse(r.sim.state().inverters[2].controls.pending.conn!);
    expect(at - t0).toBeGreaterThanOrEqual(0);
    expect(at - t0).toBeLessThanOrEqual(30 * S);
    r.clock.t += at - t0 - 1;
    expect(r.sim.state().inverters[2].connected).toBe(true);
    r.clock.t += 1;
    expect(w(await inverter(r.client, 3))).toBe(0);
  });

  it('WMaxLimPct_RmpTms ramps the limit linearly from where it is, and the revert ramps back', async () => {
    r = await rig(NOON);
    await writePoint(r.client, 1, 123, 'WMaxLimPct_RmpTms', [10]);
    await writePoint(r.client, 1, 123, 'WMaxLimPct_RvrtTms', [20]);
    await curtail(1, 400); // 100 % -> 40 % over 10 s
    r.clock.t += 5 * S;
    expect(r.sim.state().inverters[0].controls.capPct).toBeCloseTo(70, 6);
    expect(w(await inverter(r.client))).toBe(42000);
    r.clock.t += 5 * S;
    expect(w(await inverter(r.client))).toBe(24000);
    r.clock.t += 15 * S; // 20 s after the limit took effect the revert starts, 5 s into its ramp back to 100 %
    expect(r.sim.state().inverters[0].controls.capPct).toBeCloseTo(70, 6);
    r.clock.t += 5 * S;
    expect(w(await inverter(r.client))).toBeGreaterThan(55000);
  });
});

describe('model 123 revert through the ModbusAdapter (time scale 20)', () => {
  const SITE = 'site-1';
  let sim: SiteSimulator;
  let adapter: ModbusAdapter;
  const bus = new RecordingBus();
  let n = 0;

  beforeAll(async () => {
    sim = await createSiteSimulator({ startTime: new Date(NOON), cloudiness: 0, timeScale: 20 });
    const all = sim.deviceConfig({ pollIntervalMs: 100 });
    const config = validateConfig(modbusConfigSpec, { siteId: SITE, ...all, devices: all.devices.filter((d) => d.assetId === 'INV-01') });
    adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    await adapter.start();
    await bus.until(() => bus.of('rawTelemetry', 'INV-01').length > 0, 20_000, 'INV-01 polled');
  });

  afterAll(async () => {
    await adapter?.close();
    await sim?.close();
  });

  async function command(action: string, params: ControlCommand['params']): Promise<ControlResult> {
    const commandId = `t-${++n}`;
    await bus.deliver('controlCommand', `site/${SITE}/control/INV-01/command`, { schemaVersion: 1, siteId: SITE, assetId: 'INV-01', commandId, ts: Date.now(), action, params, issuedBy: 'local-control' }, { strict: true });
    await bus.until(() => bus.of<ControlResult>('controlResult').some((r) => r.commandId === commandId), 10_000, `result of ${commandId}`);
    return bus.of<ControlResult>('controlResult').find((r) => r.commandId === commandId)!;
  }

  it('a curtailment the gateway stops refreshing lapses after WMaxLimPct_RvrtTms, in telemetry', async () => {
    expect(await command('write', { point: '123.WMaxLimPct_RvrtTms', value: 20 })).toMatchObject({ status: 'succeeded' });
    expect(await command('curtail', { percent: 40 })).toMatchObject({ status: 'succeeded' });
    const cutAt = Date.now();
    const points = (m: TelemetryMessage): Record<string, unknown> => ({ ena: m.points['123.WMaxLim_Ena']?.v, w: m.points['103.W']?.v });
    const after = (): TelemetryMessage[] => bus.of<TelemetryMessage>('rawTelemetry', 'INV-01').filter((m) => m.ts > cutAt);
    await bus.until(() => after().some((m) => points(m).ena === 'ENABLED' && (points(m).w as number) <= 24000), 10_000, 'the curtailment in telemetry');
    // 20 simulated seconds at 20x: about a second later, with nothing written since, the limit is gone.
    await bus.until(() => after().some((m) => points(m).ena === 'DISABLED' && (points(m).w as number) > 55000), 10_000, 'the revert in telemetry');
    const first = after().find((m) => points(m).ena === 'DISABLED')!;
    expect(first.ts - cutAt).toBeGreaterThan(700);
    expect(sim.state().inverters[0].limitEnabled).toBe(false);
  });

  it('curtail with params.revertSeconds sets the revert time first, in the same command', async () => {
    // A revert time above 100 s is a time, not a percentage: accepted (LocalControl's default is 300 s).
    expect(await command('curtail', { percent: 30, revertSeconds: 300 })).toMatchObject({ status: 'succeeded' });
    const r = await command('curtail', { percent: 30, revertSeconds: 20 });
    expect(r).toMatchObject({ status: 'succeeded' });
    expect(r.message).toMatch(/123\.WMaxLimPct_RvrtTms=20, 123\.WMaxLimPct=30, 123\.WMaxLim_Ena=1/);
    const cutAt = Date.now();
    const after = (): TelemetryMessage[] => bus.of<TelemetryMessage>('rawTelemetry', 'INV-01').filter((m) => m.ts > cutAt);
    await bus.until(() => after().some((m) => m.points['123.WMaxLim_Ena']?.v === 'DISABLED'), 10_000, 'the revert in telemetry');
    expect((await command('curtail', { percent: 30, revertSeconds: -1 })).status).toBe('rejected');
  });
});
