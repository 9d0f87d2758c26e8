/**
 * com.dcmms.edge.ModbusAdapter configuration: schema and defaults. The recipe's
 * DefaultConfiguration must equal MODBUS_DEFAULTS (test/unit/build.test.ts checks every recipe).
 *
 * Devices come from the deployment (merged per site): a Greengrass merge replaces arrays whole, so
 * `devices` is always the complete list. Register maps are named and shared by devices.
 */
import { BASE_CONFIG_PROPERTIES, BASE_DEFAULTS, ConfigError, type BaseConfig, type ConfigSpec, type JsonSchema } from '../lib/config';

export const POINT_TYPES = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'string', 'bitfield', 'bool'] as const;
export type MapPointType = (typeof POINT_TYPES)[number];

/** Modbus Application Protocol v1.1b3 §6: 1 coils, 2 discrete inputs, 3 holding, 4 input registers. */
export type ReadFunctionCode = 1 | 2 | 3 | 4;

export interface MapPoint {
  /** Point name in telemetry (`W`, `TmpAmb`, `relay.1`). */
  name: string;
  /** Protocol (zero-based) address, 0..65535. */
  address: number;
  functionCode: ReadFunctionCode;
  type: MapPointType;
  /** Register order of 32-bit values: `big` = most significant register first (the Modbus norm). */
  wordOrder?: 'big' | 'little';
  /** Registers of a string (2 characters each). */
  length?: number;
  /** Engineering value = raw * scale + offset. */
  scale?: number;
  offset?: number;
  unit?: string;
  /** Bit names of a bitfield, bit 0 first. */
  bits?: string[];
  /** Writable through control commands (FC 3 registers with FC 6/16, FC 1 coils with FC 5). */
  writable?: boolean;
  /** Allowed engineering range for writes. */
  min?: number;
  max?: number;
}

/** How one value of a curve is laid out: register type (width), scale and word order. */
export interface CurveValueLayout {
  /** Register of the first point; point k is at address + k x the type's width. */
  address: number;
  type: 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32';
  scale?: number;
  wordOrder?: 'big' | 'little';
}

/**
 * A device's IV-curve scan (string combiners and inverters with an IV tracer): writing the string
 * number to the `trigger` point starts a scan, the `state` point goes running -> done (or failed),
 * then the curve is read from two blocks, voltages and currents (docs/modbus-adapter.md "IV scans").
 * Point names refer to the map's own points.
 */
export interface IvScanBlock {
  /** A writable holding-register point; the string number (1-based) is written to it. */
  trigger: string;
  /** A point whose value says the scan's state. */
  state: string;
  /** State values (default idle 0, running 1, done 2, failed 3). */
  states?: { idle?: number; running?: number; done?: number; failed?: number };
  /** A point counting completed scans: the curve read must be from a scan after the trigger. */
  sequence?: string;
  /** A point that says which string the curve is of (checked against the one asked for). */
  string?: string;
  /** A point with the number of valid curve points (at most `curve.maxPoints`); absent: all of them. */
  pointCount?: string;
  /** Points with the plane-of-array irradiance (W/m2) and cell temperature (C) of the scan. */
  irradiance?: string;
  temperature?: string;
  curve: {
    /** 3 holding or 4 input registers. */
    functionCode: 3 | 4;
    maxPoints: number;
    voltage: CurveValueLayout;
    current: CurveValueLayout;
  };
  /** How long after the trigger the scan must be done (default 10000 ms). */
  timeoutMs?: number;
  /** How often the state is read while the scan runs (default 250 ms). */
  statePollMs?: number;
}

export interface RegisterMap {
  points: MapPoint[];
  /** The device scans IV curves (action `iv_scan`). */
  ivScan?: IvScanBlock;
}

/** As configured (defaults: port 502; 9600 baud, no parity, 1 stop bit, 8 data bits). */
export type Connection =
  | { type: 'tcp'; host: string; port?: number }
  | { type: 'rtu'; path: string; baudRate?: number; parity?: 'none' | 'even' | 'odd'; stopBits?: 1 | 2; dataBits?: 7 | 8 };

/** With the defaults filled in. */
export type ResolvedConnection =
  | { type: 'tcp'; host: string; port: number }
  | { type: 'rtu'; path: string; baudRate: number; parity: 'none' | 'even' | 'odd'; stopBits: 1 | 2; dataBits: 7 | 8 };

export function resolveConnection(c: Connection): ResolvedConnection {
  if (c.type === 'tcp') return { type: 'tcp', host: c.host, port: c.port ?? 502 };
  return { type: 'rtu', path: c.path, baudRate: c.baudRate ?? 9600, parity: c.parity ?? 'none', stopBits: c.stopBits ?? 1, dataBits: c.dataBits ?? 8 };
}

/** Devices on one link share its connection(s): a serial bus, or one TCP endpoint (host:port). */
export function linkKey(c: ResolvedConnection): string {
  return c.type === 'tcp' ? `tcp:${endpointKey(c.host, c.port)}` : `rtu:${c.path}`;
}

/** `host:port`, an IPv6 address in brackets (`[fe80::1]:502`): how `endpoints` keys are written. */
export function endpointKey(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** An `endpoints` key as host and port, or undefined when it is not `host:port` with a port 1..65535. */
export function parseEndpoint(key: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(key);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2];
  return host !== undefined && port >= 1 && port <= 65535 ? { host, port } : undefined;
}

/** Connections to a TCP endpoint at most (1 unless `endpoints` says otherwise). */
export function maxConnectionsFor(c: Readonly<Pick<ModbusAdapterConfig, 'endpoints'>>, conn: ResolvedConnection): number {
  if (conn.type !== 'tcp') return 1;
  const want = endpointKey(conn.host, conn.port);
  for (const [k, v] of Object.entries(c.endpoints)) {
    const e = parseEndpoint(k);
    if (e && endpointKey(e.host, e.port) === want) return v.maxConnections;
  }
  return 1;
}

export interface EndpointConfig {
  /** Connections the adapter may open to this endpoint (requests outstanding at once). */
  maxConnections: number;
}

export type Profile = { type: 'sunspec'; baseAddress?: number; models?: number[] } | { type: 'registerMap'; map: string };

export interface DeviceConfig {
  assetId: string;
  enabled?: boolean;
  connection: Connection;
  unitId: number;
  pollIntervalMs: number;
  timeoutMs?: number;
  /** Largest read; Modbus allows 125 registers (FC 3/4) and 2000 bits (FC 1/2). */
  maxRegistersPerRead?: number;
  /** Unmapped registers a merged read may span (0: never read across a gap). */
  maxGapRegisters?: number;
  profile: Profile;
}

export interface ModbusAdapterConfig extends BaseConfig {
  devices: DeviceConfig[];
  registerMaps: Record<string, RegisterMap>;
  /** Per TCP endpoint (`host:port`, as the devices' connection spells host): connections allowed. Default 1. */
  endpoints: Record<string, EndpointConfig>;
  defaultTimeoutMs: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  /** Consecutive failed polls before a device is reported offline (one failure: degraded). */
  offlineAfterFailures: number;
  /** How often a SunSpec device whose discovery failed is retried, and how often models are re-walked. */
  rediscoverIntervalMs: number;
  /** Waiting control commands per device; more are rejected. */
  maxPendingWrites: number;
  /** A command without `expiresAt` is expired this long after its `ts`. */
  maxCommandAgeMs: number;
  /** Command ids remembered (with their results) to answer repeats without executing them again. */
  rememberCommandIds: number;
  /** How long a command id is remembered after the command arrived. */
  rememberCommandsMs: number;
  /** Every device's current status is published again this often (`heartbeat: true`); 0: never. */
  statusHeartbeatMs: number;
  /**
   * SunSpec models read once per discovery and per new connection instead of every poll, besides
   * 1 (common) and 120 (nameplate ratings), which always are (sunspec-profile.ts).
   */
  staticModels: number[];
}

const ID = '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$';
const POINT_NAME = '^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$';

const mapPointSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'address', 'functionCode', 'type'],
  properties: {
    name: { type: 'string', pattern: POINT_NAME },
    address: { type: 'integer', minimum: 0, maximum: 65535 },
    functionCode: { type: 'integer', enum: [1, 2, 3, 4] },
    type: { type: 'string', enum: [...POINT_TYPES] },
    wordOrder: { type: 'string', enum: ['big', 'little'] },
    length: { type: 'integer', minimum: 1, maximum: 120 },
    scale: { type: 'number' },
    offset: { type: 'number' },
    unit: { type: 'string', maxLength: 32 },
    bits: { type: 'array', maxItems: 32, items: { type: 'string', pattern: POINT_NAME } },
    writable: { type: 'boolean' },
    min: { type: 'number' },
    max: { type: 'number' },
  },
} as const;

const POINT_REF = { type: 'string', pattern: POINT_NAME } as const;
const curveValueSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['address', 'type'],
  properties: {
    address: { type: 'integer', minimum: 0, maximum: 65535 },
    type: { type: 'string', enum: ['int16', 'uint16', 'int32', 'uint32', 'float32'] },
    scale: { type: 'number', exclusiveMinimum: 0 },
    wordOrder: { type: 'string', enum: ['big', 'little'] },
  },
} as const;
const stateValue = { type: 'integer', minimum: 0, maximum: 65535 } as const;

const ivScanSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['trigger', 'state', 'curve'],
  properties: {
    trigger: POINT_REF,
    state: POINT_REF,
    states: { type: 'object', additionalProperties: false, properties: { idle: stateValue, running: stateValue, done: stateValue, failed: stateValue } },
    sequence: POINT_REF,
    string: POINT_REF,
    pointCount: POINT_REF,
    irradiance: POINT_REF,
    temperature: POINT_REF,
    curve: {
      type: 'object',
      additionalProperties: false,
      required: ['functionCode', 'maxPoints', 'voltage', 'current'],
      properties: {
        functionCode: { type: 'integer', enum: [3, 4] },
        // The contract's curve carries at most 1000 points (IV_CURVE_MAX_POINTS).
        maxPoints: { type: 'integer', minimum: 2, maximum: 1000 },
        voltage: curveValueSchema,
        current: curveValueSchema,
      },
    },
    timeoutMs: { type: 'integer', minimum: 100, maximum: 600000 },
    statePollMs: { type: 'integer', minimum: 10, maximum: 60000 },
  },
} as const;

const connectionSchema = {
  type: 'object',
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'host'],
      properties: {
        type: { const: 'tcp' },
        host: { type: 'string', minLength: 1, maxLength: 253 },
        port: { type: 'integer', minimum: 1, maximum: 65535 },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'path'],
      properties: {
        type: { const: 'rtu' },
        path: { type: 'string', minLength: 1, maxLength: 256 },
        baudRate: { type: 'integer', enum: [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] },
        parity: { type: 'string', enum: ['none', 'even', 'odd'] },
        stopBits: { type: 'integer', enum: [1, 2] },
        dataBits: { type: 'integer', enum: [7, 8] },
      },
    },
  ],
} as const;

const deviceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['assetId', 'connection', 'unitId', 'pollIntervalMs', 'profile'],
  properties: {
    assetId: { type: 'string', pattern: ID },
    enabled: { type: 'boolean' },
    connection: connectionSchema,
    // Modbus over Serial Line v1.02 §2.2: unit addresses 1..247; TCP gateways also use 0 and 255.
    unitId: { type: 'integer', minimum: 0, maximum: 255 },
    pollIntervalMs: { type: 'integer', minimum: 100, maximum: 60000 },
    timeoutMs: { type: 'integer', minimum: 20, maximum: 30000 },
    maxRegistersPerRead: { type: 'integer', minimum: 1, maximum: 125 },
    maxGapRegisters: { type: 'integer', minimum: 0, maximum: 100 },
    profile: {
      type: 'object',
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['type'],
          properties: {
            type: { const: 'sunspec' },
            baseAddress: { type: 'integer', enum: [0, 40000, 50000] },
            models: { type: 'array', maxItems: 64, items: { type: 'integer', minimum: 1, maximum: 65534 } },
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'map'],
          properties: { type: { const: 'registerMap' }, map: { type: 'string', pattern: ID } },
        },
      ],
    },
  },
} as const;

export const MODBUS_CONFIG_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'siteId',
    'metricsIntervalMs',
    'logLevel',
    'devices',
    'registerMaps',
    'endpoints',
    'defaultTimeoutMs',
    'reconnectInitialMs',
    'reconnectMaxMs',
    'offlineAfterFailures',
    'rediscoverIntervalMs',
    'maxPendingWrites',
    'maxCommandAgeMs',
    'rememberCommandIds',
    'rememberCommandsMs',
    'statusHeartbeatMs',
    'staticModels',
  ],
  properties: {
    ...BASE_CONFIG_PROPERTIES,
    devices: { type: 'array', maxItems: 512, items: deviceSchema },
    registerMaps: {
      type: 'object',
      maxProperties: 128,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['points'],
        properties: { points: { type: 'array', minItems: 1, maxItems: 2000, items: mapPointSchema }, ivScan: ivScanSchema },
      },
    },
    endpoints: {
      type: 'object',
      maxProperties: 512,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['maxConnections'],
        properties: { maxConnections: { type: 'integer', minimum: 1, maximum: 64 } },
      },
    },
    defaultTimeoutMs: { type: 'integer', minimum: 20, maximum: 30000 },
    reconnectInitialMs: { type: 'integer', minimum: 10, maximum: 60000 },
    reconnectMaxMs: { type: 'integer', minimum: 100, maximum: 600000 },
    offlineAfterFailures: { type: 'integer', minimum: 1, maximum: 100 },
    rediscoverIntervalMs: { type: 'integer', minimum: 1000, maximum: 86400000 },
    maxPendingWrites: { type: 'integer', minimum: 1, maximum: 100 },
    maxCommandAgeMs: { type: 'integer', minimum: 1000, maximum: 86400000 },
    rememberCommandIds: { type: 'integer', minimum: 10, maximum: 100000 },
    rememberCommandsMs: { type: 'integer', minimum: 60000, maximum: 604800000 },
    // 0 disables it; otherwise at least a second (configProblems): one heartbeat is a message per device.
    statusHeartbeatMs: { type: 'integer', minimum: 0, maximum: 3600000 },
    staticModels: { type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: 65534 } },
  },
};

export const MODBUS_DEFAULTS: ModbusAdapterConfig = {
  ...BASE_DEFAULTS,
  devices: [],
  registerMaps: {},
  endpoints: {},
  defaultTimeoutMs: 1000,
  reconnectInitialMs: 500,
  reconnectMaxMs: 30000,
  offlineAfterFailures: 3,
  rediscoverIntervalMs: 300000,
  maxPendingWrites: 8,
  maxCommandAgeMs: 60000,
  rememberCommandIds: 1000,
  rememberCommandsMs: 86400000,
  statusHeartbeatMs: 10000,
  staticModels: [],
};

export const modbusConfigSpec: ConfigSpec<ModbusAdapterConfig> = {
  schema: MODBUS_CONFIG_SCHEMA,
  defaults: MODBUS_DEFAULTS,
  check: (c) => {
    const problems = configProblems(c);
    if (problems.length > 0) throw configError(problems);
  },
};

/** One ConfigError for the problems configProblems found, keyed by the first one's key. */
export function configError(problems: readonly string[]): ConfigError {
  return new ConfigError((problems[0] ?? 'devices').split(/[ :]/)[0] ?? 'devices', problems.join('; '));
}

/** Cross-field checks the schema cannot say; returns problems (empty = fine). */
export function configProblems(c: Readonly<ModbusAdapterConfig>): string[] {
  const out: string[] = [];
  const ids = new Set<string>();
  for (const [i, d] of c.devices.entries()) {
    if (ids.has(d.assetId)) out.push(`devices[${i}].assetId '${d.assetId}' is used twice`);
    ids.add(d.assetId);
    if (d.profile.type === 'registerMap' && !c.registerMaps[d.profile.map]) out.push(`devices[${i}].profile.map '${d.profile.map}' is not in registerMaps`);
    if (d.connection.type === 'rtu' && (d.unitId < 1 || d.unitId > 247)) out.push(`devices[${i}].unitId ${d.unitId}: a serial unit address is 1..247 (Modbus over Serial Line §2.2)`);
  }
  const endpoints = new Map<string, string>();
  for (const k of Object.keys(c.endpoints)) {
    const e = parseEndpoint(k);
    if (!e) {
      out.push(`endpoints.${k}: a key is host:port with a port 1..65535 (an IPv6 host in brackets: [fe80::1]:502)`);
      continue;
    }
    const norm = endpointKey(e.host, e.port);
    if (endpoints.has(norm)) out.push(`endpoints.${k}: the same endpoint as '${endpoints.get(norm) ?? ''}'`);
    endpoints.set(norm, k);
  }
  if (c.statusHeartbeatMs > 0 && c.statusHeartbeatMs < 1000) out.push(`statusHeartbeatMs ${c.statusHeartbeatMs}: 0 (no heartbeat) or 1000..3600000`);
  if (c.maxCommandAgeMs > c.rememberCommandsMs) {
    out.push(`maxCommandAgeMs ${c.maxCommandAgeMs} is longer than rememberCommandsMs ${c.rememberCommandsMs}: a repeated command could run again after its id is forgotten`);
  }
  for (const [name, map] of Object.entries(c.registerMaps)) {
    const names = new Set<string>();
    for (const [j, p] of map.points.entries()) {
      const at = `registerMaps.${name}.points[${j}]`;
      if (names.has(p.name)) out.push(`${at}.name '${p.name}' is used twice`);
      names.add(p.name);
      const bit = p.functionCode === 1 || p.functionCode === 2;
      if (bit !== (p.type === 'bool')) out.push(`${at}: type ${p.type} does not fit function code ${p.functionCode} (coils/discrete inputs are bool, registers are not)`);
      if (p.type === 'string' && p.length === undefined) out.push(`${at}: a string needs length (registers)`);
      if (p.writable && (p.functionCode === 2 || p.functionCode === 4)) out.push(`${at}: function code ${p.functionCode} is read-only`);
      if (p.address + (p.type === 'string' ? (p.length ?? 1) : p.type.endsWith('32') ? 2 : 1) > 65536) out.push(`${at}: runs past address 65535`);
      if (p.min !== undefined && p.max !== undefined && p.min > p.max) out.push(`${at}: min > max`);
    }
    if (map.ivScan) out.push(...ivScanProblems(`registerMaps.${name}.ivScan`, map.ivScan, map.points));
  }
  return out;
}

/** Registers of one curve value of a type. */
export function curveValueWidth(type: CurveValueLayout['type']): number {
  return type.endsWith('32') ? 2 : 1;
}

/** An IV-scan block's references and layout against its map's points. */
function ivScanProblems(at: string, s: IvScanBlock, points: readonly MapPoint[]): string[] {
  const out: string[] = [];
  const byName = new Map(points.map((p) => [p.name, p]));
  const trigger = byName.get(s.trigger);
  // Deny-by-default holds for scans too: the trigger is written only as a declared writable register point.
  if (!trigger) out.push(`${at}.trigger: '${s.trigger}' is not a point of this map`);
  else if (!trigger.writable || trigger.functionCode !== 3 || trigger.type === 'string' || trigger.type === 'bitfield') out.push(`${at}.trigger: '${s.trigger}' must be a writable numeric holding-register point (functionCode 3, writable: true)`);
  for (const key of ['state', 'sequence', 'string', 'pointCount', 'irradiance', 'temperature'] as const) {
    const ref = s[key];
    if (ref === undefined) continue;
    const p = byName.get(ref);
    if (!p) out.push(`${at}.${key}: '${ref}' is not a point of this map`);
    else if (p.functionCode !== 3 && p.functionCode !== 4) out.push(`${at}.${key}: '${ref}' must be a register point (functionCode 3 or 4)`);
    else if (p.type === 'string' || p.type === 'bitfield') out.push(`${at}.${key}: '${ref}' must be numeric (not ${p.type})`);
  }
  const st = { idle: 0, running: 1, done: 2, failed: 3, ...s.states };
  if (new Set([st.idle, st.running, st.done, st.failed]).size !== 4) out.push(`${at}.states: idle, running, done and failed need four different values`);
  const c = s.curve;
  const span = (v: CurveValueLayout): [number, number] => [v.address, v.address + c.maxPoints * curveValueWidth(v.type)];
  const [va, vb] = span(c.voltage);
  const [ia, ib] = span(c.current);
  if (vb > 65536) out.push(`${at}.curve.voltage: ${c.maxPoints} points from ${va} run past address 65535`);
  if (ib > 65536) out.push(`${at}.curve.current: ${c.maxPoints} points from ${ia} run past address 65535`);
  if (va < ib && ia < vb) out.push(`${at}.curve: the voltage (${va}..${vb - 1}) and current (${ia}..${ib - 1}) blocks overlap`);
  return out;
}
