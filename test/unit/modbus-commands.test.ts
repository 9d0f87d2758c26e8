/**
 * A control command is executed once: the adapter remembers command ids with their results and
 * answers a repeat from memory without touching the device (also a repeat that arrives while the
 * first is still executing); expired commands, and commands older than maxCommandAgeMs without
 * expiresAt, are not executed. In-memory Modbus peer and FakeClock.
 */
import type { ControlCommand, ControlResult } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { configProblems, modbusConfigSpec } from '../../components/modbus-adapter/config';
import { MemoryModbus } from '../../components/modbus-adapter/testing/memory-modbus';

const SITE = 'site-1';

interface Rig {
  clock: FakeClock;
  bus: RecordingBus;
  mem: MemoryModbus;
  adapter: ModbusAdapter;
  send(commandId: string, extra?: Partial<ControlCommand>): Promise<void>;
  results(commandId: string): ControlResult[];
}

async function rig(extra: Record<string, unknown> = {}): Promise<Rig> {
  const clock = new FakeClock();
  const bus = new RecordingBus();
  const mem = new MemoryModbus();
  mem.set(1, 0, [0, 0, 0, 0]);
  const config = validateConfig(modbusConfigSpec, {
    siteId: SITE,
    registerMaps: { plc: { points: [{ name: 'SetP', address: 0, functionCode: 3, type: 'uint16', writable: true }, { name: 'Meas', address: 1, functionCode: 3, type: 'uint16' }] } },
    devices: [{ assetId: 'plc-1', connection: { type: 'tcp', host: 'plc', port: 502 }, unitId: 1, pollIntervalMs: 1000, timeoutMs: 5000, profile: { type: 'registerMap', map: 'plc' } }],
    ...extra,
  });
  const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock }), clock, transport: mem.factory }, config);
  await adapter.start();
  await clock.advanceAsync(0);
  let value = 0;
  return {
    clock,
    bus,
    mem,
    adapter,
    async send(commandId, extraCmd = {}) {
      const cmd: ControlCommand = { schemaVersion: 1, siteId: SITE, assetId: 'plc-1', commandId, ts: clock.now(), action: 'write', params: { point: 'SetP', value: ++value }, issuedBy: 'local-control', ...extraCmd };
      await bus.deliver('controlCommand', `site/${SITE}/control/plc-1/command`, cmd, { strict: true });
      await clock.advanceAsync(0);
    },
    results: (id) => bus.of<ControlResult>('controlResult').filter((r) => r.commandId === id),
  };
}

describe('ModbusAdapter control commands: executed once', () => {
  let r: Rig;
  afterEach(async () => {
    await r.adapter.close();
    expect(r.bus.invalid).toEqual([]);
  });

  test('a repeat is answered with the stored result, republished, and the device is not written again', async () => {
    r = await rig();
    await r.send('c1');
    expect(r.results('c1')).toEqual([expect.objectContaining({ status: 'succeeded', message: expect.stringContaining('SetP') })]);
    expect(r.mem.writes()).toHaveLength(1);
    await r.clock.advanceAsync(5000);
    await r.send('c1', { params: { point: 'SetP', value: 99 } });
    const [first, again] = r.results('c1');
    expect(again).toEqual(first);
    expect(r.mem.writes()).toHaveLength(1);
    expect(r.mem.get(1, 0)).toBe(1);
  });

  test('a repeat that arrives while the first is executing gets its result when it ends (one execution)', async () => {
    r = await rig();
    const release = r.mem.holdWrites();
    await r.send('c2');
    expect(r.mem.writes()).toHaveLength(1);
    await r.send('c2');
    await r.send('c2');
    expect(r.results('c2')).toEqual([]);
    release();
    await r.clock.advanceAsync(0);
    const results = r.results('c2');
    expect(results).toHaveLength(3);
    expect(new Set(results.map((x) => `${x.status}|${x.message}`)).size).toBe(1);
    expect(results[0]?.status).toBe('succeeded');
    expect(r.mem.writes()).toHaveLength(1);
  });

  test('expired (expiresAt past) and too old (ts + maxCommandAgeMs past, no expiresAt) are not executed', async () => {
    r = await rig();
    const now = r.clock.now();
    await r.send('x1', { expiresAt: now - 1 });
    await r.send('x2', { ts: now - 60_001 });
    await r.send('ok1', { ts: now - 59_000 });
    // expiresAt, when given, is the command's limit, whatever its age.
    await r.send('ok2', { ts: now - 120_000, expiresAt: now + 5000 });
    expect(r.results('x1')).toEqual([expect.objectContaining({ status: 'expired', message: expect.stringContaining('expired at') })]);
    expect(r.results('x2')).toEqual([expect.objectContaining({ status: 'expired', message: expect.stringMatching(/older than maxCommandAgeMs 60000/) })]);
    expect(r.results('ok1')[0]?.status).toBe('succeeded');
    expect(r.results('ok2')[0]?.status).toBe('succeeded');
    expect(r.mem.writes()).toHaveLength(2);
    // A repeat of an expired command gets the same answer.
    await r.send('x1', { expiresAt: now - 1 });
    expect(r.results('x1').map((x) => x.status)).toEqual(['expired', 'expired']);
  });

  test('maxCommandAgeMs is configurable; a command valid for longer than ids are remembered is refused', async () => {
    r = await rig({ maxCommandAgeMs: 5000, rememberCommandsMs: 3_600_000 });
    const now = r.clock.now();
    await r.send('y1', { ts: now - 5001 });
    await r.send('y2', { ts: now - 4000 });
    await r.send('y3', { expiresAt: now + 3_600_001 });
    expect(r.results('y1')[0]).toMatchObject({ status: 'expired' });
    expect(r.results('y2')[0]).toMatchObject({ status: 'succeeded' });
    expect(r.results('y3')[0]).toMatchObject({ status: 'rejected', message: expect.stringMatching(/remembered/) });
    expect(r.mem.writes()).toHaveLength(1);
  });

  test('a command that expires while it waits for the device is not executed', async () => {
    r = await rig();
    const now = r.clock.now();
    const release = r.mem.holdWrites();
    await r.send('q1', { expiresAt: now + 500 });
    await r.send('q2', { expiresAt: now + 500 });
    await r.clock.advanceAsync(600);
    release();
    await r.clock.advanceAsync(0);
    await r.clock.advanceAsync(0);
    expect(r.results('q1')[0]?.status).toBe('succeeded');
    expect(r.results('q2')[0]).toMatchObject({ status: 'expired', message: expect.stringMatching(/waiting/) });
    expect(r.mem.writes()).toHaveLength(1);
  });

  test('memory is bounded by count: ids of commands that can no longer run are forgotten first; while all could still run, new ones are refused', async () => {
    r = await rig({ rememberCommandIds: 10 });
    for (let i = 1; i <= 10; i++) await r.send(`m${i}`);
    await r.send('m11');
    expect(r.results('m11')[0]).toMatchObject({ status: 'rejected', message: expect.stringMatching(/10 commands .* remembered/) });
    expect(r.mem.writes()).toHaveLength(10);
    // Still remembered: answered from memory.
    const m1 = r.results('m1')[0]!;
    await r.send('m1', { ts: m1.ts });
    expect(r.results('m1').map((x) => x.status)).toEqual(['succeeded', 'succeeded']);
    // 61 s later none of them can run any more: a new id takes the oldest one's place.
    await r.clock.advanceAsync(61_000);
    await r.send('m12');
    expect(r.results('m12')[0]?.status).toBe('succeeded');
    // m1 is forgotten: its repeat is judged anew, and it is too old to run.
    await r.send('m1', { ts: m1.ts });
    expect(r.results('m1').map((x) => x.status)).toEqual(['succeeded', 'succeeded', 'expired']);
    expect(r.mem.writes()).toHaveLength(11);
  });

  test('memory is bounded by age (rememberCommandsMs)', async () => {
    r = await rig({ rememberCommandsMs: 120_000 });
    await r.send('a1', { expiresAt: r.clock.now() + 100_000 });
    await r.clock.advanceAsync(90_000);
    await r.send('a1', { expiresAt: r.clock.now() + 10_000 });
    expect(r.results('a1').map((x) => x.status)).toEqual(['succeeded', 'succeeded']);
    await r.clock.advanceAsync(31_000);
    await r.send('a1', { expiresAt: r.clock.now() + 10_000 });
    // Forgotten after 120 s: judged anew (and executed, since this repeat says it is still valid).
    expect(r.results('a1').map((x) => x.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(r.mem.writes()).toHaveLength(2);
  });
});

describe('command memory configuration', () => {
  test('maxCommandAgeMs may not exceed rememberCommandsMs', () => {
    const c = validateConfig(modbusConfigSpec, { siteId: SITE });
    expect(c).toMatchObject({ maxCommandAgeMs: 60_000, rememberCommandIds: 1000, rememberCommandsMs: 86_400_000 });
    expect(configProblems({ ...c, maxCommandAgeMs: 7_200_000, rememberCommandsMs: 3_600_000 })).toEqual([expect.stringMatching(/maxCommandAgeMs 7200000 .* rememberCommandsMs 3600000/)]);
  });
});
