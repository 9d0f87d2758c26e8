/**
 * Devices with plain (non-SunSpec) register maps: weather station, tracker controller, digital I/O.
 * Each map is declared once, in the ModbusAdapter's register-map point shape (address, function
 * code, type, word order, scale, offset, unit), and both the served registers and the emitted device
 * configuration come from that declaration. Engineering value = raw * scale + offset.
 */
import { DeviceInfo, DeviceTables, SimDevice } from './device';
import { ModbusException, ModbusExceptionCode } from './modbus-server';
import { IO_INPUTS, IO_RELAYS, type Plant } from './plant';
// The simulator's maps are ModbusAdapter register maps: one type for both sides.
import type { MapPoint, MapPointType } from '../../components/modbus-adapter/config';

export type { MapPoint, MapPointType };

export const WEATHER_MAP: MapPoint[] = [
  { name: 'ghi', address: 0, functionCode: 3, type: 'uint16', unit: 'W/m2' },
  { name: 'poa', address: 1, functionCode: 3, type: 'uint16', unit: 'W/m2' },
  { name: 'ambientTemp', address: 2, functionCode: 3, type: 'int16', scale: 0.1, unit: 'C' },
  { name: 'moduleTemp', address: 3, functionCode: 3, type: 'int16', scale: 0.1, unit: 'C' },
  { name: 'windSpeed', address: 4, functionCode: 3, type: 'uint16', scale: 0.01, unit: 'm/s' },
  { name: 'windDirection', address: 5, functionCode: 3, type: 'uint16', unit: 'deg' },
  { name: 'insolationToday', address: 6, functionCode: 3, type: 'float32', wordOrder: 'big', unit: 'kWh/m2' },
  { name: 'poaPrecise', address: 8, functionCode: 3, type: 'float32', wordOrder: 'big', unit: 'W/m2' },
  { name: 'status', address: 10, functionCode: 3, type: 'bitfield', bits: ['heaterOn', 'sensorFault', 'cleaningDue'] },
  { name: 'rainRate', address: 11, functionCode: 3, type: 'uint16', scale: 0.1, unit: 'mm/h' },
  { name: 'uptime', address: 12, functionCode: 3, type: 'uint32', wordOrder: 'little', unit: 's' },
  { name: 'rainToday', address: 14, functionCode: 3, type: 'uint16', scale: 0.1, unit: 'mm' },
  { name: 'stationName', address: 16, functionCode: 3, type: 'string', length: 8 },
];

export const TRACKER_MODES = ['auto', 'manual', 'stow'] as const;

export const TRACKER_MAP: MapPoint[] = [
  { name: 'actualAngle', address: 0, functionCode: 3, type: 'int16', scale: 0.1, unit: 'deg' },
  { name: 'targetAngle', address: 1, functionCode: 3, type: 'int16', scale: 0.1, unit: 'deg' },
  { name: 'mode', address: 2, functionCode: 3, type: 'uint16', writable: true, min: 0, max: 2 },
  { name: 'manualSetpoint', address: 3, functionCode: 3, type: 'int16', scale: 0.1, unit: 'deg', writable: true, min: -55, max: 55 },
  { name: 'status', address: 4, functionCode: 3, type: 'bitfield', bits: ['moving', 'stowed', 'fault', 'windStow'] },
  { name: 'windSpeed', address: 5, functionCode: 3, type: 'uint16', scale: 0.01, unit: 'm/s' },
  { name: 'motorHours', address: 6, functionCode: 3, type: 'uint32', wordOrder: 'big', scale: 0.1, unit: 'h' },
  { name: 'sunElevation', address: 8, functionCode: 3, type: 'float32', wordOrder: 'little', unit: 'deg' },
];

export const IO_MAP: MapPoint[] = [
  ...IO_RELAYS.map((n, i): MapPoint => ({ name: `relay.${n}`, address: i, functionCode: 1, type: 'bool', writable: true })),
  ...IO_INPUTS.map((n, i): MapPoint => ({ name: `di.${n}`, address: i, functionCode: 2, type: 'bool' })),
];

export const REGISTER_MAPS: Record<string, { points: MapPoint[] }> = {
  'dcmms-sim-weather': { points: WEATHER_MAP },
  'dcmms-sim-tracker': { points: TRACKER_MAP },
  'dcmms-sim-io': { points: IO_MAP },
};

export function registersOf(p: MapPoint): number {
  return p.type === 'string' ? (p.length ?? 1) : p.type.endsWith('32') ? 2 : 1;
}

/** Engineering value -> registers for one point. */
export function encodeMapValue(p: MapPoint, value: number | string): number[] {
  if (p.type === 'string') {
    const b = Buffer.alloc((p.length ?? 1) * 2);
    b.write(String(value).slice(0, b.length), 'latin1');
    return Array.from({ length: b.length / 2 }, (_, i) => b.readUInt16BE(i * 2));
  }
  const v = typeof value === 'number' ? value : Number(value);
  const b = Buffer.alloc(4);
  if (p.type === 'float32') b.writeFloatBE(v);
  else {
    const raw = Math.round((v - (p.offset ?? 0)) / (p.scale ?? 1));
    if (p.type === 'int16') b.writeInt16BE(Math.max(-32768, Math.min(32767, raw)));
    else if (p.type === 'uint16' || p.type === 'bitfield') b.writeUInt16BE(Math.max(0, Math.min(65535, raw)));
    else if (p.type === 'int32') b.writeInt32BE(raw);
    else b.writeUInt32BE(Math.max(0, raw) >>> 0);
  }
  if (registersOf(p) === 1) return [b.readUInt16BE(0)];
  const hi = b.readUInt16BE(0);
  const lo = b.readUInt16BE(2);
  return p.wordOrder === 'little' ? [lo, hi] : [hi, lo];
}

/** Registers -> engineering value, for a write. */
function decodeMapValue(p: MapPoint, regs: number[]): number {
  const raw = p.type === 'int16' ? (regs[0] << 16) >> 16 : regs[0];
  return raw * (p.scale ?? 1) + (p.offset ?? 0);
}

/** The registers of one table (FC 3 holding or FC 4 input) from address 0 to its last point; gaps read 0. */
export function registerBlock(map: MapPoint[], fc: 3 | 4, values: Record<string, number | string>): number[] {
  const size = Math.max(0, ...map.filter((p) => p.functionCode === fc).map((p) => p.address + registersOf(p)));
  const regs = new Array<number>(size).fill(0);
  for (const p of map) {
    if (p.functionCode !== fc) continue;
    const v = values[p.name];
    if (v !== undefined) encodeMapValue(p, v).forEach((r, i) => (regs[p.address + i] = r));
  }
  return regs;
}

abstract class MapDevice extends SimDevice {
  constructor(
    info: DeviceInfo,
    sync: () => void,
    protected readonly plant: Plant,
    protected readonly map: MapPoint[],
  ) {
    super(info, sync);
  }
  protected abstract values(): Record<string, number | string>;
  protected tables(): DeviceTables {
    return { holding: [{ start: 0, values: registerBlock(this.map, 3, this.values()) }], input: [], coils: [], discrete: [] };
  }
  protected applyRegisters(address: number, values: number[]): void {
    const updates: [MapPoint, number][] = [];
    for (let i = 0; i < values.length; i++) {
      const p = this.map.find((q) => q.functionCode === 3 && q.address === address + i);
      if (p === undefined || !p.writable || registersOf(p) !== 1) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: register ${address + i} is not writable`);
      const v = decodeMapValue(p, [values[i]]);
      if ((p.min !== undefined && v < p.min) || (p.max !== undefined && v > p.max)) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_VALUE, `${this.info.assetId}: ${p.name} ${v} outside ${p.min}..${p.max}`);
      updates.push([p, v]);
    }
    for (const [p, v] of updates) this.apply(p.name, v);
  }
  protected apply(name: string, value: number): void {
    void name;
    void value;
  }
}

export class WeatherDevice extends MapDevice {
  constructor(info: DeviceInfo, sync: () => void, plant: Plant, private readonly startedMs: number) {
    super(info, sync, plant, WEATHER_MAP);
  }
  protected values(): Record<string, number | string> {
    const w = this.plant.weather;
    return {
      ghi: w.ghi,
      poa: w.poa,
      ambientTemp: w.ambientC,
      moduleTemp: w.moduleC,
      windSpeed: w.windMs,
      windDirection: w.windDirDeg,
      insolationToday: w.insolationKWhM2,
      poaPrecise: w.poa,
      status: w.ambientC < 3 ? 1 : 0,
      rainRate: w.rainMmH,
      uptime: Math.floor((this.plant.simMs - this.startedMs) / 1000),
      rainToday: w.rainTodayMm,
      stationName: 'DCMMS-SIM-WS',
    };
  }
}

export class TrackerDevice extends MapDevice {
  constructor(info: DeviceInfo, sync: () => void, plant: Plant) {
    super(info, sync, plant, TRACKER_MAP);
  }
  protected values(): Record<string, number | string> {
    const t = this.plant.tracker;
    const moving = Math.abs(t.targetDeg - t.actualDeg) > 0.05;
    return {
      actualAngle: t.actualDeg,
      targetAngle: t.targetDeg,
      mode: TRACKER_MODES.indexOf(t.mode),
      manualSetpoint: t.manualDeg,
      status: (moving ? 1 : 0) | (t.mode === 'stow' ? 2 : 0) | (t.stuck && moving ? 4 : 0),
      windSpeed: this.plant.weather.windMs,
      motorHours: t.motorHours,
      sunElevation: this.plant.weather.sunElevationDeg,
    };
  }
  protected apply(name: string, value: number): void {
    if (name === 'mode') this.plant.tracker.mode = TRACKER_MODES[value];
    if (name === 'manualSetpoint') this.plant.tracker.manualDeg = value;
  }
}

export class IoDevice extends SimDevice {
  constructor(info: DeviceInfo, sync: () => void, private readonly plant: Plant) {
    super(info, sync);
  }
  protected tables(): DeviceTables {
    return { holding: [], input: [], coils: [...this.plant.io.coils], discrete: [...this.plant.io.inputs] };
  }
  protected applyRegisters(address: number): void {
    throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: no holding register ${address}`);
  }
  protected applyCoils(address: number, values: boolean[]): void {
    if (address + values.length > this.plant.io.coils.length) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: coil ${address}+${values.length} is not mapped`);
    this.plant.writeRelays(address, values);
  }
}
