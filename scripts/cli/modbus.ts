/**
 * `dcmms-edge modbus scan`: the commissioning tool. Finds a device's SunSpec map and prints every
 * model it serves, decoded, as one JSON document on stdout.
 *
 *   dcmms-edge modbus scan --host H [--port 502] [--unit 1] [--timeout 2000] [--base 40000|0|50000]
 *   dcmms-edge modbus scan --serial PATH [--baud 9600] [--parity none|even|odd] [--stop-bits 1|2] [--unit 1]
 *
 * Output: `{ device, base, models: { "<model id>": { "<point>": value } }, unknownModels, problems }`.
 * A point's value is after its scale factor; a point with a unit is `{ "value": 9560, "unit": "W" }`,
 * one without is the bare value; enums are their symbol name, bitfields the array of set bit names;
 * repeating groups (model 160 `module`) are arrays of such objects; points that are not implemented
 * are absent, and scale-factor and pad points are applied, not printed. A model that appears twice
 * is keyed `"<id>#2"`. Discovery follows the SunSpec Modbus specification ("Device Discovery"):
 * 'SunS' at 40000, then 0, then 50000; exit 1 with a message when none of them has it.
 */
import { systemClock } from '../../components/lib/clock';
import { errorMessage } from '../../components/lib/errors';
import { resolveConnection, type Connection } from '../../components/modbus-adapter/config';
import { Link } from '../../components/modbus-adapter/link';
import type { DeviceIo } from '../../components/modbus-adapter/profile';
import { splitSpan } from '../../components/modbus-adapter/planner';
import { discover, DiscoveryError } from '../../components/modbus-adapter/sunspec-profile';
import { modbusSerialTransport, type TransportFactory } from '../../components/modbus-adapter/transport';
import { decodeModel, toTree, type DecodedPoint, type GroupDef, type ModelDef, type TreeInstance } from '../../components/modbus-adapter/sunspec';
import { CliUsageError, helpText, parseCommand } from './args';
import { MODBUS_SCAN } from './commands';


type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

export interface ScanResult {
  device: Record<string, string | number>;
  base: number;
  models: Record<string, Record<string, JsonValue>>;
  unknownModels: Array<{ id: number; address: number; length: number }>;
  problems: string[];
}

function int(v: unknown, flag: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new CliUsageError(`--${flag} must be an integer ${min}..${max}`);
  return n;
}

function connectionFrom(values: Record<string, unknown>): Connection {
  const host = values['host'];
  const serial = values['serial'];
  if ((typeof host === 'string') === (typeof serial === 'string')) throw new CliUsageError('give one of --host H or --serial PATH');
  if (typeof host === 'string') return { type: 'tcp', host, port: int(values['port'], 'port', 502, 1, 65535) };
  const parity = values['parity'] ?? 'none';
  if (parity !== 'none' && parity !== 'even' && parity !== 'odd') throw new CliUsageError('--parity must be none, even or odd');
  const stopBits = int(values['stop-bits'], 'stop-bits', 1, 1, 2) as 1 | 2;
  return { type: 'rtu', path: serial as string, baudRate: int(values['baud'], 'baud', 9600, 300, 4_000_000), parity, stopBits };
}

/** Names of a model's scale-factor and pad points, at any depth: applied or meaningless, not printed. */
function hiddenPoints(def: ModelDef): Set<string> {
  const out = new Set<string>();
  const walk = (g: GroupDef): void => {
    for (const p of g.points) if (p.type === 'sunssf' || p.type === 'pad') out.add(p.name);
    for (const c of g.groups) walk(c);
  };
  walk(def.group);
  return out;
}

function isPoint(v: DecodedPoint | TreeInstance[]): v is DecodedPoint {
  return !Array.isArray(v);
}

function pointValue(p: DecodedPoint): JsonValue {
  if (p.bits) return [...p.bits];
  if (p.symbol !== undefined) return p.symbol;
  const v = typeof p.value === 'number' && !Number.isFinite(p.value) ? null : p.value;
  return p.units && typeof v === 'number' ? { value: v, unit: p.units } : p.units && v === null ? { value: null, unit: p.units } : v;
}

function render(t: TreeInstance, hidden: Set<string>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(t)) {
    if (isPoint(v)) {
      if (!hidden.has(k)) out[k] = pointValue(v);
    } else out[k] = v.map((inst) => render(inst, hidden));
  }
  return out;
}

/** Discover and decode every model of one device. Throws DiscoveryError when there is no 'SunS'. */
export async function scanDevice(conn: Connection, opts: { unitId: number; timeoutMs: number; base?: number; transport?: TransportFactory }): Promise<ScanResult> {
  const resolved = resolveConnection(conn);
  const link = new Link('scan', resolved, opts.transport ?? modbusSerialTransport, systemClock, { reconnectInitialMs: 100, reconnectMaxMs: 1000 });
  const { unitId, timeoutMs } = opts;
  const io: DeviceIo = {
    readRegisters: (fc, address, count) => link.request((t) => t.readRegisters(unitId, fc, address, count, timeoutMs), timeoutMs, unitId),
    readBits: (fc, address, count) => link.request((t) => t.readBits(unitId, fc, address, count, timeoutMs), timeoutMs, unitId),
    writeRegisters: () => Promise.reject(new Error('the scan never writes')),
    writeCoil: () => Promise.reject(new Error('the scan never writes')),
  };
  try {
    const found = await discover(io, { maxRegisters: 125, ...(opts.base !== undefined ? { bases: [opts.base] } : {}) });
    const result: ScanResult = {
      device: resolved.type === 'tcp' ? { host: resolved.host, port: resolved.port, unit: unitId } : { serial: resolved.path, baud: resolved.baudRate, parity: resolved.parity, stopBits: resolved.stopBits, unit: unitId },
      base: found.base,
      models: {},
      unknownModels: [],
      problems: [],
    };
    for (const m of found.models) {
      if (!m.def) {
        result.unknownModels.push({ id: m.id, address: m.address, length: m.length });
        continue;
      }
      if (m.problem && m.fault) {
        result.problems.push(m.problem);
        continue;
      }
      let key = String(m.id);
      for (let n = 2; key in result.models; n++) key = `${m.id}#${n}`;
      try {
        const regs: number[] = [];
        for (const s of splitSpan(m.address + 2, m.length, 125)) regs.push(...(await io.readRegisters(3, s.address, s.count)));
        result.models[key] = render(toTree(decodeModel(m.def, regs)), hiddenPoints(m.def));
      } catch (err) {
        result.problems.push(`model ${m.id} at ${m.address} (length ${m.length}): ${errorMessage(err)}`);
      }
    }
    return result;
  } finally {
    await link.close();
  }
}

export async function runModbus(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === 'help' || sub === '--help') {
    process.stdout.write(helpText(MODBUS_SCAN));
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'scan') throw new CliUsageError(`unknown modbus command '${sub}' (modbus scan is the one)`);
  const { values } = parseCommand(MODBUS_SCAN, rest);
  const conn = connectionFrom(values);
  // Modbus over Serial Line v1.02 §2.2: serial unit addresses are 1..247; TCP also allows 0 and 255.
  const unitId = int(values['unit'], 'unit', 1, conn.type === 'rtu' ? 1 : 0, conn.type === 'rtu' ? 247 : 255);
  const timeoutMs = int(values['timeout'], 'timeout', 2000, 20, 60_000);
  const base = values['base'] === undefined ? undefined : int(values['base'], 'base', 40000, 0, 65535);
  if (base !== undefined && base !== 0 && base !== 40000 && base !== 50000) throw new CliUsageError('--base must be 40000, 0 or 50000 (SunSpec base addresses)');
  try {
    const result = await scanDevice(conn, { unitId, timeoutMs, ...(base !== undefined ? { base } : {}) });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (err) {
    const where = conn.type === 'tcp' ? `${conn.host}:${conn.port ?? 502}` : conn.path;
    if (err instanceof DiscoveryError) process.stderr.write(`modbus scan: ${where} unit ${unitId} is not a SunSpec device: ${err.message}\n`);
    else process.stderr.write(`modbus scan: ${where} unit ${unitId}: ${errorMessage(err)}\n`);
    return 1;
  }
}
