/**
 * The ModbusAdapter against faulty devices: a misbehaving Modbus TCP server on node:net
 * (components/modbus-adapter/testing/faulty-server.ts) serving a SunSpec inverter image. For each
 * fault the adapter must keep running (no unhandled rejection), report the device status truthfully
 * on the device status topic (degraded / offline with the reason), and read good data again once
 * the fault clears. Last, on RTU: a unit that never answers on a bus it shares with a good one
 * (pymodbus with the RTU framer behind a socat pty, answering unit 1 only).
 */
import { systemClock } from '../../components/lib/clock';
import type { DeviceStatus, TelemetryMessage } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec, type DeviceConfig } from '../../components/modbus-adapter/config';
import { walkImage } from '../../components/modbus-adapter/sunspec';
import { FaultyModbusServer, type Fault } from '../../components/modbus-adapter/testing/faulty-server';
import { startPymodbus } from '../../components/modbus-adapter/testing/pymodbus';
import { startPtyBridge } from '../../components/modbus-adapter/testing/serial-line';
import { inverterImage } from '../../components/modbus-adapter/testing/images';
import { RecordingBus } from '../../components/lib/testing/recording-bus';

jest.setTimeout(30_000);

const SITE = 'site-1';
const BASE = 40000;
const IMAGE = inverterImage();
const MODELS = walkImage(IMAGE);
const m160 = MODELS.find((m) => m.id === 160)!;
const m103 = MODELS.find((m) => m.id === 103)!;
/** Absolute address of model 160's ID register and of model 103's registers. */
const M160_AT = BASE + m160.offset;
const M103_FROM = BASE + m103.offset + 2;
const M103_TO = M103_FROM + m103.length;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));

interface Rig {
  server: FaultyModbusServer;
  bus: RecordingBus;
  metrics: Metrics;
  adapter: ModbusAdapter;
  statuses(): DeviceStatus[];
  telemetry(): TelemetryMessage[];
  /** Resolves with the first status published after index `from` that matches. */
  status(from: number, pred: (s: DeviceStatus) => boolean, what: string, timeoutMs?: number): Promise<DeviceStatus>;
  /** Waits for good telemetry (103.W 9560 W) sampled after `since`. */
  goodData(since: number): Promise<TelemetryMessage>;
  close(): Promise<void>;
}

async function rig(extra: Partial<DeviceConfig> = {}, adapterExtra: Record<string, unknown> = {}): Promise<Rig> {
  const server = new FaultyModbusServer({ [BASE]: IMAGE });
  const port = await server.listen();
  const bus = new RecordingBus();
  const metrics = createMetrics({ clock: systemClock });
  const device: DeviceConfig = { assetId: 'inv-1', connection: { type: 'tcp', host: '127.0.0.1', port }, unitId: 1, pollIntervalMs: 100, timeoutMs: 250, profile: { type: 'sunspec' }, ...extra };
  const config = validateConfig(modbusConfigSpec, {
    siteId: SITE,
    devices: [device],
    offlineAfterFailures: 2,
    reconnectInitialMs: 20,
    reconnectMaxMs: 200,
    rediscoverIntervalMs: 1000,
    ...adapterExtra,
  });
  const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics, clock: systemClock }, config);
  const statuses = (): DeviceStatus[] => bus.of<DeviceStatus>('deviceStatus', 'inv-1');
  const telemetry = (): TelemetryMessage[] => bus.of<TelemetryMessage>('rawTelemetry', 'inv-1');
  const r: Rig = {
    server,
    bus,
    metrics,
    adapter,
    statuses,
    telemetry,
    async status(from, pred, what, timeoutMs = 10_000) {
      await bus.until(() => statuses().slice(from).some(pred), timeoutMs, what);
      return statuses().slice(from).find(pred)!;
    },
    async goodData(since) {
      const ok = (t: TelemetryMessage): boolean => t.ts >= since && t.points['103.W']?.v === 9560 && t.points['160.module.2.DCV']?.v === 605.9;
      await bus.until(() => telemetry().some(ok), 10_000, 'good telemetry after the fault cleared');
      return telemetry().find(ok)!;
    },
    async close() {
      await adapter.close();
      await server.close();
    },
  };
  await adapter.start();
  await r.status(0, (s) => s.state === 'online', 'first online');
  await r.goodData(0);
  return r;
}

/** Fault, expected status (state and reason), then clear: back online with good data. */
const cases: Array<{ name: string; fault: Fault; state: 'degraded' | 'offline'; reason: RegExp }> = [
  { name: 'exception 4 (server device failure) on every read', fault: { kind: 'exception', code: 4 }, state: 'offline', reason: /exception 4 \(SERVER DEVICE FAILURE\)/ },
  { name: 'exception 6 (busy) for one model only', fault: { kind: 'exception', code: 6, from: M103_FROM, to: M103_TO }, state: 'degraded', reason: /model 103 .*exception 6 \(SERVER DEVICE BUSY\)/ },
  { name: 'no answer (timeout)', fault: { kind: 'silent' }, state: 'offline', reason: /MODBUS_TIMEOUT/ },
  { name: 'a truncated frame (header only, then silence)', fault: { kind: 'truncated', bytes: 9 }, state: 'offline', reason: /MODBUS_TIMEOUT/ },
  { name: 'a short PDU (byte count promises more than follows)', fault: { kind: 'short-pdu' }, state: 'offline', reason: /MODBUS_IO.*length/i },
  { name: 'an MBAP length longer than the frame', fault: { kind: 'bad-length', delta: 6 }, state: 'offline', reason: /MODBUS_TIMEOUT/ },
  { name: 'an MBAP length shorter than the frame', fault: { kind: 'bad-length', delta: -4 }, state: 'offline', reason: /MODBUS_IO/ },
  { name: 'a wrong transaction id', fault: { kind: 'bad-tid' }, state: 'offline', reason: /MODBUS_TIMEOUT/ },
  { name: 'a wrong function code', fault: { kind: 'bad-fc' }, state: 'offline', reason: /MODBUS_IO.*code/ },
  { name: 'the connection dropped mid-read', fault: { kind: 'drop' }, state: 'offline', reason: /MODBUS_IO.*clos/i },
  { name: 'connections accepted and closed at once', fault: { kind: 'refuse' }, state: 'offline', reason: /MODBUS_(IO|CONNECT|BACKOFF)/ },
];

describe('ModbusAdapter against faulty devices', () => {
  it.each(cases)('$name: reports $state with the reason, recovers when it clears', async ({ fault, state, reason }) => {
    const r = await rig();
    try {
      const before = r.statuses().length;
      r.server.setFault(fault);
      if (fault.kind === 'refuse') r.server.dropConnections();
      const bad = await r.status(before, (s) => s.state === state, `${state} status`);
      expect(bad.message).toMatch(reason);
      expect(bad.consecutiveFailures).toBe(state === 'offline' ? 2 : 0);
      // A partial poll still publishes the good models; a failed one publishes nothing.
      const sentDuringFault = r.telemetry().length;
      const afterBad = r.statuses().length;
      const cleared = Date.now();
      r.server.setFault({ kind: 'none' });
      const good = await r.status(afterBad, (s) => s.state === 'online', 'online again');
      expect(good.consecutiveFailures).toBe(0);
      expect(good.lastSeen).toBeGreaterThanOrEqual(cleared);
      const t = await r.goodData(cleared);
      expect(t.seq).toBeGreaterThan(sentDuringFault);
      // The whole story on the status topic, one message per change: first failure degraded, then
      // offline (models forgotten, to be walked again), then online with the models re-discovered.
      const story = r.statuses().slice(before).map((x) => `${x.state}${x.models ? `:${x.models.length}` : ''}`);
      expect(story).toEqual(state === 'offline' ? ['degraded:5', 'offline', 'online:5'] : ['degraded:5', 'online:5']);
      if (state === 'degraded') {
        // The other models kept reporting during the fault.
        const partial = r.telemetry().find((m) => m.points['103.W'] === undefined && m.points['160.module.1.DCA']?.v === 8.5);
        expect(partial).toBeDefined();
      }
      const s = r.adapter.stats()[0]!;
      if (state === 'degraded') expect(s.partial).toBeGreaterThan(0);
      else expect(s.failures).toBeGreaterThanOrEqual(2);
      expect(r.metrics.snapshot().errors).toBeGreaterThan(0);
      expect(r.bus.invalid).toEqual([]);
      expect(unhandled).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('a wrong SunSpec marker: offline with the reason, discovered once the marker is right', async () => {
    const server = new FaultyModbusServer({ [BASE]: IMAGE });
    server.set(BASE, [0x5375, 0x6e54]); // 'SunT'
    await server.listen();
    const bus = new RecordingBus();
    const config = validateConfig(modbusConfigSpec, {
      siteId: SITE,
      offlineAfterFailures: 2,
      devices: [{ assetId: 'inv-1', connection: { type: 'tcp', host: '127.0.0.1', port: server.port }, unitId: 1, pollIntervalMs: 100, timeoutMs: 250, profile: { type: 'sunspec' } }],
    });
    const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    try {
      await adapter.start();
      await bus.until(() => adapter.stats()[0]!.failures >= 3, 10_000, 'three failed discoveries');
      const st = bus.of<DeviceStatus>('deviceStatus', 'inv-1');
      expect(st.map((s) => s.state)).toEqual(['offline']);
      expect(st[0]!.message).toMatch(/no SunSpec marker 'SunS' \(tried 40000: 0x5375 0x6e54; 0: exception 2; 50000: exception 2\)/);
      expect(bus.of('rawTelemetry')).toEqual([]);
      server.set(BASE, [0x5375, 0x6e53]);
      await bus.until(() => bus.of<DeviceStatus>('deviceStatus', 'inv-1').some((s) => s.state === 'online'), 10_000, 'online');
      const online = bus.of<DeviceStatus>('deviceStatus', 'inv-1').at(-1)!;
      expect(online.models).toEqual([1, 103, 120, 123, 160]);
      await bus.until(() => bus.of<TelemetryMessage>('rawTelemetry', 'inv-1').some((t) => t.points['103.W']?.v === 9560), 10_000, 'telemetry');
      expect(unhandled).toEqual([]);
    } finally {
      await adapter.close();
      await server.close();
    }
  });

  it('a model length that runs past the end of the map: degraded naming the model, the others still read; fixed on re-discovery', async () => {
    const r = await rig();
    try {
      const before = r.statuses().length;
      // Model 160 claims 40 more registers than the device serves; the end marker is swallowed.
      r.server.set(M160_AT + 1, [m160.length + 40]);
      r.server.unset(M160_AT + 2 + m160.length + 2, 100);
      const bad = await r.status(before, (s) => s.state === 'degraded', 'degraded after re-discovery');
      expect(bad.message).toMatch(new RegExp(`model 160 at ${M160_AT} \\(length ${m160.length + 40}\\).*exception 2`));
      const since = Date.now();
      await r.bus.until(() => r.telemetry().some((t) => t.ts >= since && t.points['103.W']?.v === 9560 && t.points['160.module.1.DCA'] === undefined), 10_000, 'the other models during the fault');
      const afterBad = r.statuses().length;
      const fixed = Date.now();
      r.server.set(M160_AT + 1, [m160.length]);
      r.server.set(M160_AT + 2 + m160.length, [0xffff, 0]);
      await r.status(afterBad, (s) => s.state === 'online', 'online after the map is fixed');
      await r.goodData(fixed);
      expect(unhandled).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('a model whose length runs past address 65535 is not read and is reported', async () => {
    const img = inverterImage();
    const at = MODELS.find((m) => m.id === 160)!.offset;
    const server = new FaultyModbusServer({ [BASE]: img });
    // Model 160's header says 30000 registers: 40000 + ... + 30000 > 65535.
    server.set(BASE + at + 1, [30000]);
    await server.listen();
    const bus = new RecordingBus();
    const config = validateConfig(modbusConfigSpec, {
      siteId: SITE,
      devices: [{ assetId: 'inv-1', connection: { type: 'tcp', host: '127.0.0.1', port: server.port }, unitId: 1, pollIntervalMs: 100, timeoutMs: 250, profile: { type: 'sunspec' } }],
    });
    const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    try {
      await adapter.start();
      await bus.until(() => bus.of<TelemetryMessage>('rawTelemetry', 'inv-1').length >= 2, 10_000, 'telemetry');
      const st = bus.of<DeviceStatus>('deviceStatus', 'inv-1');
      expect(st[0]).toMatchObject({ state: 'degraded', models: [1, 103, 120, 123, 160] });
      expect(st[0]!.message).toMatch(/model 160 at \d+ with length 30000 runs past address 65535/);
      const t = bus.of<TelemetryMessage>('rawTelemetry', 'inv-1')[0]!;
      expect(t.points['103.W']?.v).toBe(9560);
      expect(Object.keys(t.points).some((k) => k.startsWith('160.'))).toBe(false);
      expect(unhandled).toEqual([]);
    } finally {
      await adapter.close();
      await server.close();
    }
  });

  it('a device slower than its poll interval: overruns counted and skipped, one request at a time, nothing queues', async () => {
    const r = await rig();
    try {
      const polls0 = r.adapter.stats()[0]!.polls;
      r.server.setFault({ kind: 'slow', delayMs: 60 });
      const since = Date.now();
      // A poll is 3 reads (models 103, 123, 160; the static 120 is read once per connection), so about 180 ms a cycle against a 100 ms interval.
      await r.bus.until(() => r.adapter.stats()[0]!.overruns >= 10, 15_000, '10 overruns');
      const s = r.adapter.stats()[0]!;
      const elapsed = Date.now() - since;
      const snap = r.metrics.snapshot();
      expect(snap.dropped['poll_overrun']).toBe(s.overruns);
      // Skipped, not queued: the link never held more than the one request in flight, and the
      // device never saw two outstanding requests.
      expect(Object.entries(snap.queues).filter(([k]) => k.startsWith('link:')).every(([, d]) => d <= 1)).toBe(true);
      expect(r.server.stats.maxOutstanding).toBe(1);
      // Cycles completed at the device's pace, not the timer's: fewer polls than ticks.
      const polls = s.polls - polls0;
      expect(polls).toBeGreaterThan(0);
      expect(polls).toBeLessThan(elapsed / 100);
      expect(s.lastCycleMs).toBeGreaterThanOrEqual(3 * 60);
      // Slow but answering: still online, and every telemetry message is complete.
      expect(s.state).toBe('online');
      expect(r.telemetry().filter((t) => t.ts >= since).every((t) => t.points['103.W']?.v === 9560)).toBe(true);
      const heapBefore = process.memoryUsage().heapUsed;
      const overrunsBefore = s.overruns;
      await r.bus.until(() => r.adapter.stats()[0]!.overruns >= overrunsBefore + 20, 15_000, '20 more overruns');
      global.gc?.();
      // Bounded: 20 more skipped ticks cost no queued state (a generous bound for GC noise).
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(20 * 1024 * 1024);
      const cleared = Date.now();
      r.server.setFault({ kind: 'none' });
      await r.goodData(cleared);
      expect(unhandled).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('RTU: a unit that never answers on a shared bus goes offline, its neighbour keeps polling, and it comes online when it appears', async () => {
    // pymodbus (RTU framer, socat pty) answers unit 1 only; unit 2 gets no answer at all.
    const server = await startPymodbus({ hr: { [BASE]: IMAGE } }, { framer: 'rtu', units: [1] });
    const bus = new RecordingBus();
    const serial = { type: 'rtu', path: server.serialPath, baudRate: 115200 };
    const config = validateConfig(modbusConfigSpec, {
      siteId: SITE,
      offlineAfterFailures: 2,
      devices: [
        { assetId: 'inv-1', connection: serial, unitId: 1, pollIntervalMs: 200, timeoutMs: 300, profile: { type: 'sunspec' } },
        { assetId: 'inv-2', connection: serial, unitId: 2, pollIntervalMs: 200, timeoutMs: 300, profile: { type: 'sunspec' } },
      ],
    });
    const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    const states = (id: string): string[] => bus.of<DeviceStatus>('deviceStatus', id).map((x) => x.state);
    try {
      await adapter.start();
      await bus.until(() => states('inv-2').includes('offline') && states('inv-1').includes('online'), 15_000, 'inv-2 offline, inv-1 online');
      const ghost = bus.of<DeviceStatus>('deviceStatus', 'inv-2').find((x) => x.state === 'offline')!;
      expect(ghost.message).toMatch(/MODBUS_TIMEOUT.*unit 2/);
      // The neighbour keeps reporting between the ghost's timeouts, and never fails.
      const n = bus.of('rawTelemetry', 'inv-1').length;
      await bus.until(() => bus.of('rawTelemetry', 'inv-1').length >= n + 3, 10_000, 'three more polls of inv-1 while inv-2 times out');
      expect(states('inv-1')).toEqual(['online']);
      expect(adapter.stats().find((x) => x.assetId === 'inv-1')!.failures).toBe(0);
      expect(bus.of('rawTelemetry', 'inv-2')).toEqual([]);
      await server.addUnit(2);
      await bus.until(() => states('inv-2').at(-1) === 'online', 15_000, 'inv-2 online once it answers');
      await bus.until(() => bus.of<TelemetryMessage>('rawTelemetry', 'inv-2').some((t) => t.points['103.W']?.v === 9560), 10_000, 'inv-2 telemetry');
      expect(bus.invalid).toEqual([]);
      expect(unhandled).toEqual([]);
    } finally {
      await adapter.close();
      await server.stop();
    }
  });

  it('RTU: answers that come after the timeout are never taken for the answer to a later request', async () => {
    // Two blocks of the same size on one unit: a late answer to the first would fit the second.
    const server = new FaultyModbusServer({ 0: new Array<number>(10).fill(1111), 20: new Array<number>(10).fill(2222) }, { framing: 'rtu' });
    await server.listen();
    const pty = await startPtyBridge(server.port);
    const bus = new RecordingBus();
    const points = (prefix: string, at: number) => Array.from({ length: 10 }, (_v, i) => ({ name: `${prefix}${i}`, address: at + i, functionCode: 3, type: 'uint16' }));
    const config = validateConfig(modbusConfigSpec, {
      siteId: SITE,
      offlineAfterFailures: 2,
      registerMaps: { two: { points: [...points('a', 0), ...points('b', 20)] } },
      devices: [{ assetId: 'map-1', connection: { type: 'rtu', path: pty.path, baudRate: 115200 }, unitId: 1, pollIntervalMs: 100, timeoutMs: 150, profile: { type: 'registerMap', map: 'two' } }],
    });
    const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    const telemetry = (): TelemetryMessage[] => bus.of<TelemetryMessage>('rawTelemetry', 'map-1');
    const consistent = (t: TelemetryMessage): boolean => Object.entries(t.points).every(([k, p]) => p.v === (k.startsWith('a') ? 1111 : 2222));
    try {
      await adapter.start();
      await bus.until(() => telemetry().length >= 2, 10_000, 'telemetry');
      // One answer to block A (registers 0..9) comes 90 ms after its request timed out. By then the
      // adapter has asked for A again and then for B (20..29), which the device answers slowly but in
      // time, so the late frame of A (same unit, function code and length) arrives while B's answer
      // is awaited.
      for (let round = 0; round < 3; round++) {
        const n = telemetry().length;
        server.setFault([
          { kind: 'slow', delayMs: 240, from: 0, to: 10, times: 1 },
          { kind: 'slow', delayMs: 100, from: 20, to: 30 },
        ]);
        await bus.until(() => telemetry().length >= n + 3, 10_000, `three polls after late answer ${round + 1}`);
      }
      server.setFault({ kind: 'none' });
      const cleared = Date.now();
      await bus.until(() => telemetry().some((t) => t.ts > cleared), 10_000, 'telemetry after the fault');
      expect(telemetry().filter((t) => !consistent(t))).toEqual([]);
      expect(bus.of<DeviceStatus>('deviceStatus', 'map-1').at(-1)!.state).toBe('online');
      expect(unhandled).toEqual([]);
    } finally {
      await adapter.close();
      await pty.stop();
      await server.close();
    }
  });
});
