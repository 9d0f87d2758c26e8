/**
 * The site simulator: a plant (plant.ts) behind one Modbus TCP port (modbus-server.ts), where the
 * unit id selects the device. Simulated time = startTime + (clock.now() - start) x timeScale,
 * evaluated lazily on every request, so an injected clock drives everything and nothing runs
 * between requests.
 */
import type { Clock } from '../../components/lib/clock';
import { silentLogger, type Logger } from '../../components/lib/logger';
import type { ControlGroupName } from './controls';
import { COMBINER_MAP_NAME, COMBINER_MAX_STRINGS, CombinerDevice, combinerChannels, combinerRegisterMap, type CombinerChannel } from './combiner';
import { DeviceInfo, SimDevice } from './device';
import { FaultSpec, SimulatorError, applyFaults, validateFault } from './faults';
import { IoDevice, REGISTER_MAPS, TrackerDevice, WeatherDevice, type MapPoint } from './map-devices';
import { createModbusTcpServer } from './modbus-server';
import { IO_INPUTS, IO_RELAYS, PLANT_DEFAULTS, Plant, PlantOptions } from './plant';
import { inverterModels, inverterWriteCheck, meterModels, SUNSPEC_BASE, SunSpecDevice, type Controls } from './sunspec-device';
// The models the ModbusAdapter reads once per connection rather than every poll.
import { BUILTIN_STATIC_MODELS } from '../../components/modbus-adapter/sunspec-profile';
import type { IvScanBlock } from '../../components/modbus-adapter/config';

export type { FaultSpec } from './faults';

export interface SiteSimulatorOptions extends Partial<PlantOptions> {
  host?: string;
  /** 0 (default) = a free port. */
  port?: number;
  /** Simulated seconds per real second (1 = real time; 1440 = a day in a minute). */
  timeScale?: number;
  /** Simulated time at start; default: today 10:00 UTC. */
  startTime?: Date;
  clock?: Pick<Clock, 'now'>;
  logger?: Logger;
  /** Real milliseconds between plant updates at most once (requests in between see the same instant). */
  minUpdateMs?: number;
}

/** Inverter n (1-based) is unit n, its combiner box unit firstCombiner - 1 + n. */
export const UNIT_IDS = { firstInverter: 1, meter: 100, weather: 101, tracker: 102, io: 103, firstCombiner: 111 } as const;
/** Inverters at most: their unit ids stay below the meter's, their boxes' below 248 (Modbus over Serial Line §2.2). */
export const MAX_INVERTERS = 99;

/**
 * Operations on site by hand (a technician at a combiner box or at the switchgear), as opposed to
 * faults: what they change stays until it is operated again, by hand or over Modbus.
 */
export type Operation =
  /** A string's disconnect in its combiner box; `unit` is the box's unit id, `string` 1-based. */
  | { kind: 'string-switch'; unit: number; string: number; closed: boolean }
  /** The main breaker (closing is refused while the breakerTrip relay is energized). */
  | { kind: 'breaker'; closed: boolean }
  /** A cleaning crew washes the modules of one inverter's array (`unit`, the inverter's unit id) or of all: accumulated soiling back to 0. */
  | { kind: 'clean'; unit?: number };
export const OPERATION_KINDS: readonly Operation['kind'][] = ['string-switch', 'breaker', 'clean'];

export interface SimulatedDevice extends DeviceInfo {
  /** SunSpec devices: the base address of the image; map devices: the register map. */
  baseAddress?: number;
  points?: MapPoint[];
}

export interface ActiveFault {
  id: string;
  spec: FaultSpec;
  /** Simulated time it was injected (ISO). */
  since: string;
}

/** The ModbusAdapter configuration for the simulated plant (components/modbus-adapter/config.ts). */
export interface SimulatorDeviceConfig {
  devices: {
    assetId: string;
    connection: { type: 'tcp'; host: string; port: number };
    unitId: number;
    pollIntervalMs: number;
    /** SunSpec: `models` lists the dynamic models only (polled every time; the adapter reads 1 and 120 once per connection). */
    profile: { type: 'sunspec'; baseAddress: number; models: number[] } | { type: 'registerMap'; map: string };
  }[];
  /** Points, and the combiner boxes' IV-scan block (`ivScan`). */
  registerMaps: Record<string, { points: MapPoint[]; ivScan?: IvScanBlock }>;
}

export interface SiteSimulator {
  readonly host: string;
  readonly port: number;
  devices(): SimulatedDevice[];
  deviceConfig(opts?: { pollIntervalMs?: number; host?: string }): SimulatorDeviceConfig;
  /** Returns the fault id. Throws SimulatorError on an invalid spec. */
  injectFault(spec: FaultSpec): string;
  /** Clears one fault (by id) or all; returns how many were cleared. */
  clearFault(id?: string): number;
  faults(): ActiveFault[];
  /** Operate something by hand. Throws SimulatorError on an invalid operation. */
  operate(op: Operation): void;
  /** True physical values now (simulated time), for comparing with what the adapter reports. */
  state(): SiteState;
  simTime(): Date;
  close(): Promise<void>;
}

export interface SiteState {
  time: string;
  weather: Plant['weather'];
  tracker: Plant['tracker'];
  meter: Plant['meter'] & { unitId: number; assetId: string };
  /** `inputs` as the module serves them (with digital-input faults); `breakerClosed` is the breaker itself. */
  io: { relays: Record<string, boolean>; inputs: Record<string, boolean>; breakerClosed: boolean };
  inverters: {
    unitId: number;
    assetId: string;
    acW: number;
    dcW: number;
    wh: number;
    st: string;
    events: string[];
    connected: boolean;
    limitPct: number;
    limitEnabled: boolean;
    /** Model 123 timers (docs/simulator.md "Model 123 timers"). */
    controls: {
      /** The output cap in force now, % of WMax (100: none), along a ramp under way. */
      capPct: number;
      /** Commands waiting for their time window: when they take effect (simulated time, ISO). */
      pending: Partial<Record<ControlGroupName, string>>;
      /** Reverts to come (simulated time, ISO). */
      revertAt: Partial<Record<ControlGroupName, string>>;
    };
    heatsinkC: number;
    cabinetC: number;
    frozen: boolean;
    commLoss: boolean;
    strings: { id: number; w: number; v: number; a: number; wh: number; closed: boolean }[];
    /** What reaches the cells: (1 - accumulated soiling) x (1 - a soiling fault's loss); the weather station's cell stays at 1. */
    soilingRatio: number;
    /** Accumulated soiling: the loss, since when it has grown (the last cleaning or washing rain), the last cleaning by hand (ISO). */
    soiling: { accumulated: number; faultLoss: number; since: string; cleanedAt: string };
  }[];
  combiners: {
    unitId: number;
    assetId: string;
    /** The inverter its strings feed. */
    inverterAssetId: string;
    frozen: boolean;
    commLoss: boolean;
    strings: CombinerChannel[];
  }[];
  faults: ActiveFault[];
}

function controlsState(inv: Plant['inverters'][number], now: number): SiteState['inverters'][number]['controls'] {
  const t = inv.controls.timers();
  const iso = (m: Partial<Record<ControlGroupName, number>>): Partial<Record<ControlGroupName, string>> =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [k, new Date(v).toISOString()]));
  return { capPct: inv.controls.capPct(now), pending: iso(t.pending), revertAt: iso(t.revertAt) };
}

function defaultStart(now: number): Date {
  const d = new Date(now);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), 10, 0, 0));
}

export async function createSiteSimulator(opts: SiteSimulatorOptions = {}): Promise<SiteSimulator> {
  const clock = opts.clock ?? { now: () => Date.now() };
  const log = (opts.logger ?? silentLogger).child({ component: 'site-simulator' });
  const timeScale = opts.timeScale ?? 1;
  if (!(timeScale > 0)) throw new Error(`timeScale must be > 0 (got ${timeScale})`);
  const inverters = opts.inverters ?? PLANT_DEFAULTS.inverters;
  if (!Number.isInteger(inverters) || inverters < 1 || inverters > MAX_INVERTERS) throw new Error(`inverters must be 1..${MAX_INVERTERS} (got ${inverters})`);
  const strings = opts.stringsPerInverter ?? PLANT_DEFAULTS.stringsPerInverter;
  if (!Number.isInteger(strings) || strings < 1 || strings > COMBINER_MAX_STRINGS) throw new Error(`stringsPerInverter must be 1..${COMBINER_MAX_STRINGS} (got ${strings})`);
  const o = { ...PLANT_DEFAULTS, ...opts };
  if (!(o.trackerGcr >= 0 && o.trackerGcr < 1)) throw new Error(`trackerGcr must be 0..1 (0 = no backtracking; got ${o.trackerGcr})`);
  if (!(o.trackerLimitDeg > 0 && o.trackerLimitDeg <= 90)) throw new Error(`trackerLimitDeg must be 0..90 (got ${o.trackerLimitDeg})`);
  if (!(o.soilingRatePctPerDay >= 0 && o.soilingRatePctPerDay <= 10)) throw new Error(`soilingRatePctPerDay must be 0..10 (got ${o.soilingRatePctPerDay})`);
  if (!(o.rainChance >= 0 && o.rainChance <= 1)) throw new Error(`rainChance must be 0..1 (got ${o.rainChance})`);
  if (!(o.rainCleaningMm > 0)) throw new Error(`rainCleaningMm must be > 0 (got ${o.rainCleaningMm})`);
  const realStart = clock.now();
  const simStart = (opts.startTime ?? defaultStart(realStart)).getTime();
  const plant = new Plant(opts, simStart);
  const minUpdateMs = opts.minUpdateMs ?? 20;
  let lastSync = realStart;

  const simNow = (): number => simStart + (clock.now() - realStart) * timeScale;
  const sync = (): void => {
    const now = clock.now();
    if (now - lastSync < minUpdateMs && now >= lastSync) return;
    lastSync = now;
    plant.advanceTo(simNow());
  };
  const forceSync = (): void => {
    lastSync = clock.now();
    plant.advanceTo(simNow());
  };

  const devices = new Map<number, SimDevice>();
  const described: SimulatedDevice[] = [];
  /** SunSpec devices: asset id -> the models they serve that change (what a poll should read). */
  const dynamicModels = new Map<string, number[]>();
  const staticModels = new Set(BUILTIN_STATIC_MODELS);
  const dynamicOf = (models: { id: number }[]): number[] => models.map((m) => m.id).filter((id) => !staticModels.has(id));
  const pad = (n: number): string => String(n).padStart(2, '0');

  plant.inverters.forEach((inv, i) => {
    const unitId = UNIT_IDS.firstInverter + i;
    const info: DeviceInfo = {
      unitId,
      kind: 'inverter',
      assetId: `INV-${pad(i + 1)}`,
      profile: 'sunspec',
      description: `${inv.ratedW / 1000} kW three-phase PV inverter, ${inv.strings.length} MPPT inputs: SunSpec 1, 103, 120, 123, 160`,
    };
    // Writes to other models than 123 (model 1 DA) are accepted and kept, with no effect on the plant.
    const other: Controls = {};
    const dev = new SunSpecDevice(
      info,
      sync,
      () => inverterModels(plant, inv, unitId, info.assetId),
      inverterWriteCheck,
      (modelId, updates) => {
        if (modelId !== 123) {
          other[modelId] = { ...(other[modelId] ?? {}), ...updates };
          return;
        }
        plant.writeControls(inv, updates);
        log.info('inverter controls written', { assetId: info.assetId, ...updates, connected: inv.connected, limitPct: inv.limitPct, limitEnabled: inv.limitEnabled });
      },
    );
    devices.set(unitId, dev);
    described.push({ ...info, baseAddress: SUNSPEC_BASE });
    dynamicModels.set(info.assetId, dynamicOf(inverterModels(plant, inv, unitId, info.assetId)));
  });
  const meterInfo: DeviceInfo = { unitId: UNIT_IDS.meter, kind: 'meter', assetId: 'METER-01', profile: 'sunspec', description: 'revenue meter at the grid connection, three-phase wye: SunSpec 1, 203 (W > 0 = export)' };
  devices.set(meterInfo.unitId, new SunSpecDevice(meterInfo, sync, () => meterModels(plant.meter, meterInfo.unitId, meterInfo.assetId), inverterWriteCheck, () => undefined));
  described.push({ ...meterInfo, baseAddress: SUNSPEC_BASE });
  dynamicModels.set(meterInfo.assetId, dynamicOf(meterModels(plant.meter, meterInfo.unitId, meterInfo.assetId)));
  const mapDevices: [DeviceInfo, SimDevice][] = [];
  const ws: DeviceInfo = { unitId: UNIT_IDS.weather, kind: 'weather', assetId: 'WS-01', profile: 'dcmms-sim-weather', description: 'weather station: GHI, plane-of-array irradiance, ambient and module temperature, wind' };
  mapDevices.push([ws, new WeatherDevice(ws, sync, plant, simStart)]);
  const tr: DeviceInfo = { unitId: UNIT_IDS.tracker, kind: 'tracker', assetId: 'TRK-01', profile: 'dcmms-sim-tracker', description: 'single-axis tracker controller (all rows): angle, mode, stow' };
  mapDevices.push([tr, new TrackerDevice(tr, sync, plant)]);
  const io: DeviceInfo = { unitId: UNIT_IDS.io, kind: 'io', assetId: 'IO-01', profile: 'dcmms-sim-io', description: `digital I/O: relays ${IO_RELAYS.join(', ')}; inputs ${IO_INPUTS.join(', ')}` };
  mapDevices.push([io, new IoDevice(io, sync, plant)]);
  for (const [info, dev] of mapDevices) {
    devices.set(info.unitId, dev);
    described.push({ ...info, points: REGISTER_MAPS[info.profile].points });
  }
  const registerMaps: SimulatorDeviceConfig['registerMaps'] = { ...REGISTER_MAPS, [COMBINER_MAP_NAME]: combinerRegisterMap(plant.o.stringsPerInverter) };
  const combiners: { info: DeviceInfo; dev: CombinerDevice; inv: Plant['inverters'][number] }[] = [];
  plant.inverters.forEach((inv, i) => {
    const info: DeviceInfo = {
      unitId: UNIT_IDS.firstCombiner + i,
      kind: 'combiner',
      assetId: `CB-${pad(i + 1)}`,
      profile: COMBINER_MAP_NAME,
      description: `DC combiner box of INV-${pad(i + 1)}: ${inv.strings.length} strings, each with a disconnect switch (coil), current, voltage and insulation`,
    };
    const dev = new CombinerDevice(info, sync, plant, inv, registerMaps[COMBINER_MAP_NAME].points);
    devices.set(info.unitId, dev);
    combiners.push({ info, dev, inv });
    described.push({ ...info, points: registerMaps[COMBINER_MAP_NAME].points });
  });

  const server = await createModbusTcpServer({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, device: (u) => devices.get(u), logger: log });
  const host = opts.host ?? '127.0.0.1';
  log.info('site simulator listening', { host, port: server.port, timeScale, start: new Date(simStart).toISOString() });

  const active: ActiveFault[] = [];
  let nextFault = 1;
  const reapply = (): void => {
    applyFaults(plant, devices, active.map((f) => f.spec));
  };

  let closed: Promise<void> | undefined;
  return {
    host,
    port: server.port,
    devices: () => described.map((d) => ({ ...d })),
    deviceConfig: (o = {}) => ({
      devices: described.map((d) => ({
        assetId: d.assetId,
        connection: { type: 'tcp' as const, host: o.host ?? host, port: server.port },
        unitId: d.unitId,
        pollIntervalMs: o.pollIntervalMs ?? 1000,
        profile: d.profile === 'sunspec' ? { type: 'sunspec' as const, baseAddress: SUNSPEC_BASE, models: [...(dynamicModels.get(d.assetId) ?? [])] } : { type: 'registerMap' as const, map: d.profile },
      })),
      registerMaps: JSON.parse(JSON.stringify(registerMaps)) as SimulatorDeviceConfig['registerMaps'],
    }),
    injectFault: (spec) => {
      validateFault(spec, devices, plant.o.stringsPerInverter);
      forceSync();
      const id = `F${nextFault++}`;
      active.push({ id, spec: { ...spec }, since: new Date(plant.simMs).toISOString() });
      reapply();
      log.info('fault injected', { id, ...spec });
      return id;
    },
    clearFault: (id) => {
      forceSync();
      const before = active.length;
      for (let i = active.length - 1; i >= 0; i--) if (id === undefined || active[i].id === id) active.splice(i, 1);
      reapply();
      log.info('fault cleared', { id: id ?? 'all', cleared: before - active.length });
      return before - active.length;
    },
    faults: () => active.map((f) => ({ ...f, spec: { ...f.spec } })),
    operate: (op) => {
      const o = op as unknown as Record<string, unknown>;
      if (typeof o !== 'object' || o === null || !OPERATION_KINDS.includes(o.kind as Operation['kind'])) throw new SimulatorError(`operation kind must be one of ${OPERATION_KINDS.join(', ')}`);
      if (o.kind === 'clean') {
        const unit = o.unit;
        if (unit !== undefined && !(typeof unit === 'number' && Number.isInteger(unit) && unit >= UNIT_IDS.firstInverter && unit < UNIT_IDS.firstInverter + plant.inverters.length)) {
          throw new SimulatorError(`clean: unit is an inverter's unit id (${UNIT_IDS.firstInverter}..${UNIT_IDS.firstInverter + plant.inverters.length - 1}), or left out for the whole plant`);
        }
        forceSync();
        plant.clean(unit === undefined ? undefined : unit - UNIT_IDS.firstInverter);
        log.info('operated by hand', { kind: 'clean', unit: unit ?? 'all' });
        return;
      }
      if (typeof o.closed !== 'boolean') throw new SimulatorError(`${String(o.kind)}: closed is true or false`);
      if (o.kind === 'breaker') {
        forceSync();
        if (!plant.operateBreaker(o.closed)) throw new SimulatorError('breaker: cannot close while the breakerTrip relay is energized (the breaker is trip-free)');
        log.info('operated by hand', { kind: 'breaker', closed: o.closed });
        return;
      }
      const box = combiners.find((c) => c.info.unitId === o.unit);
      if (box === undefined) throw new SimulatorError(`string-switch: unit is a combiner box's unit id (${combiners.map((c) => c.info.unitId).join(', ')})`);
      if (typeof o.string !== 'number' || !Number.isInteger(o.string) || o.string < 1 || o.string > box.inv.strings.length) throw new SimulatorError(`string-switch: string is 1..${box.inv.strings.length}`);
      forceSync();
      plant.setStringSwitch(box.inv, o.string - 1, o.closed);
      log.info('operated by hand', { ...op, assetId: box.info.assetId });
    },
    state: () => {
      forceSync();
      const s: SiteState = {
        time: new Date(plant.simMs).toISOString(),
        weather: { ...plant.weather },
        tracker: { ...plant.tracker },
        meter: { ...plant.meter, unitId: meterInfo.unitId, assetId: meterInfo.assetId },
        io: {
          relays: Object.fromEntries(IO_RELAYS.map((n, i) => [n, plant.io.coils[i]])),
          inputs: Object.fromEntries(IO_INPUTS.map((n, i) => [n, plant.io.inputs[i]])),
          breakerClosed: plant.breakerClosed,
        },
        inverters: plant.inverters.map((inv, i) => {
          const dev = devices.get(UNIT_IDS.firstInverter + i) as SimDevice;
          return {
            unitId: dev.info.unitId,
            assetId: dev.info.assetId,
            acW: inv.acW,
            dcW: inv.dcW,
            wh: inv.wh,
            st: inv.st,
            events: [...inv.events],
            connected: inv.connected,
            limitPct: inv.limitPct,
            limitEnabled: inv.limitEnabled,
            controls: controlsState(inv, plant.simMs),
            heatsinkC: inv.heatsinkC,
            cabinetC: inv.cabinetC,
            frozen: dev.isFrozen,
            commLoss: dev.commLoss,
            strings: inv.strings.map((st) => ({ id: st.index + 1, w: st.w, v: st.v, a: st.a, wh: st.wh, closed: st.closed })),
            soilingRatio: inv.soiling.ratio,
            soiling: {
              accumulated: inv.soiling.accumulated,
              faultLoss: inv.faults.soiling,
              since: new Date(inv.soiling.sinceMs).toISOString(),
              cleanedAt: new Date(inv.soiling.cleanedAtMs).toISOString(),
            },
          };
        }),
        combiners: combiners.map((c) => ({
          unitId: c.info.unitId,
          assetId: c.info.assetId,
          inverterAssetId: `INV-${pad(c.inv.index + 1)}`,
          frozen: c.dev.isFrozen,
          commLoss: c.dev.commLoss,
          strings: combinerChannels(plant, c.inv),
        })),
        faults: active.map((f) => ({ ...f, spec: { ...f.spec } })),
      };
      return s;
    },
    simTime: () => new Date(simNow()),
    close: () => {
      closed ??= server.close().then(() => log.info('site simulator closed'));
      return closed;
    },
  };
}
