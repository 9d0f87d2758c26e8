/**
 * Test helpers: the site simulator read and written with modbus-serial's client (a real client
 * written by others), decoded with the project's SunSpec library and the simulator's register maps.
 * Only tests use this file.
 */
import ModbusRTU from 'modbus-serial';
import { decodeModel, getModel, pointLocation, type DecodedModel } from '../../../components/modbus-adapter/sunspec';
import type { MapPoint } from '../map-devices';
import { createSiteSimulator, type SiteSimulator, type SiteSimulatorOptions } from '../site';

export interface Rig {
  sim: SiteSimulator;
  client: ModbusRTU;
  /** The injected clock: move `t` (real milliseconds) to move simulated time by t x timeScale. */
  clock: { t: number; now(): number };
}

/** A simulator on an injected clock (clear sky, seed 7, no update throttling) and a connected client. */
export async function rig(start: number, opts: SiteSimulatorOptions = {}): Promise<Rig> {
  const clock = {
    t: 1_000_000,
    now(): number {
      return this.t;
    },
  };
  const sim = await createSiteSimulator({ clock, startTime: new Date(start), cloudiness: 0, minUpdateMs: 0, seed: 7, ...opts });
  const client = await connect(sim);
  return { sim, client, clock };
}

export async function connect(sim: SiteSimulator, timeoutMs = 1000): Promise<ModbusRTU> {
  const c = new ModbusRTU();
  await c.connectTCP('127.0.0.1', { port: sim.port });
  c.setTimeout(timeoutMs);
  return c;
}

export const closeClient = (c: ModbusRTU): Promise<void> => new Promise<void>((done) => c.close(() => done()));

export async function stop(r: Rig): Promise<void> {
  await closeClient(r.client);
  await r.sim.close();
}

/** Walk the SunSpec chain of a unit: model id -> { address of its first register after the header, decoded }. */
export async function readSunSpec(client: ModbusRTU, unit: number): Promise<Map<number, { addr: number; model: DecodedModel }>> {
  client.setID(unit);
  const marker = (await client.readHoldingRegisters(40000, 2)).data;
  if (marker[0] !== 0x5375 || marker[1] !== 0x6e53) throw new Error(`unit ${unit}: no SunS marker at 40000 (${marker.join(', ')})`);
  const out = new Map<number, { addr: number; model: DecodedModel }>();
  let addr = 40002;
  for (let i = 0; i < 20; i++) {
    const [id, len] = (await client.readHoldingRegisters(addr, 2)).data;
    if (id === 0xffff) return out;
    const regs: number[] = [];
    for (let o = 0; o < len; o += 125) regs.push(...(await client.readHoldingRegisters(addr + 2 + o, Math.min(125, len - o))).data);
    const def = getModel(id);
    if (def) out.set(id, { addr: addr + 2, model: decodeModel(def, regs) });
    addr += 2 + len;
  }
  throw new Error('no end marker');
}

/** Every model of an inverter (or meter), decoded, by model id as a string. */
export async function inverter(client: ModbusRTU, unit = 1): Promise<Record<string, DecodedModel>> {
  const m = await readSunSpec(client, unit);
  return Object.fromEntries([...m].map(([id, v]) => [String(id), v.model]));
}

/** Write raw registers to a SunSpec point, found by walking the unit's chain. */
export async function writePoint(client: ModbusRTU, unit: number, modelId: number, point: string, registers: number[]): Promise<void> {
  const m = await readSunSpec(client, unit);
  const base = m.get(modelId)?.addr;
  const def = getModel(modelId);
  const loc = def && pointLocation(def, point);
  if (base === undefined || !loc) throw new Error(`unit ${unit} has no model ${modelId} point ${point}`);
  client.setID(unit);
  await client.writeRegisters(base + loc.offset, registers);
}

/** The error a request failed with (modbus-serial rejects with plain objects); throws if it succeeded. */
export async function modbusError(p: Promise<unknown>): Promise<{ modbusCode?: number; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { modbusCode?: number; message: string };
  }
  throw new Error('request succeeded');
}

/** Engineering value of a one- or two-register map point from a block read from address 0. */
export function mapValue(regs: number[], name: string, map: MapPoint[]): number {
  const p = map.find((q) => q.name === name);
  if (!p) throw new Error(`no point ${name}`);
  const b = Buffer.alloc(4);
  if (p.type === 'float32') {
    const [a, c] = [regs[p.address], regs[p.address + 1]];
    b.writeUInt16BE(p.wordOrder === 'little' ? c : a, 0);
    b.writeUInt16BE(p.wordOrder === 'little' ? a : c, 2);
    return b.readFloatBE(0);
  }
  const raw = p.type === 'int16' ? (regs[p.address] << 16) >> 16 : regs[p.address];
  return raw * (p.scale ?? 1) + (p.offset ?? 0);
}
