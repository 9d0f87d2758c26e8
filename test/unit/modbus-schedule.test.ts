/**
 * Polls keep to the clock: a device's polls are due at fixed slots (first slot + k x
 * pollIntervalMs), each timer set for the next slot, so a timer that fires late (Node's do, by a
 * millisecond or two) delays that one poll and never the ones after it. A slot that finds the
 * previous cycle still running, or that passed while the process could not run, is an overrun:
 * counted and skipped, the next poll on the next slot. A step of the wall clock (NTP) re-anchors
 * the slots instead of stalling polling or counting the step as overruns.
 *
 * In-memory Modbus peer, FakeClock; `LateClock` makes timers fire late as Node's do: a timeout
 * `late` ms after it is due, and an interval (as Node's setInterval) rescheduled `ms` after the
 * late firing, so it drifts.
 */
import type { Clock, TimerHandle } from '../../components/lib/clock';
import type { TelemetryMessage } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { MemoryModbus } from '../../components/modbus-adapter/testing/memory-modbus';
import type { Transport, TransportFactory } from '../../components/modbus-adapter/transport';

class LateClock implements Clock {
  /** How late the next timer fires, ms (as an event loop busy with other work makes it). */
  late = 2;
  /** Wall clock minus the timers' (monotonic) clock: an NTP step. */
  skew = 0;
  private nextId = 1;
  private readonly live = new Map<number, TimerHandle>();

  constructor(readonly fake: FakeClock) {}

  now(): number {
    return this.fake.now() + this.skew;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.live.set(
      id,
      this.fake.setTimeout(() => {
        this.live.delete(id);
        fn();
      }, Math.max(0, ms) + this.late),
    );
    return id;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.fake.clearTimeout(this.live.get(handle as number));
    this.live.delete(handle as number);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    const arm = (): void => {
      this.live.set(
        id,
        this.fake.setTimeout(() => {
          arm();
          fn();
        }, ms + this.late),
      );
    };
    arm();
    return id;
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }
}

/** Reads take `delayMs` (on the clock) before the peer's answer is delivered. */
function slowReads(factory: TransportFactory, clock: Clock, delay: () => number): TransportFactory {
  return (conn) => {
    const t = factory(conn);
    const later = <T>(p: Promise<T>): Promise<T> => {
      const ms = delay();
      return ms <= 0 ? p : new Promise<T>((resolve, reject) => clock.setTimeout(() => p.then(resolve, reject), ms));
    };
    const w: Transport = {
      get isOpen() {
        return t.isOpen;
      },
      open: () => t.open(),
      close: () => t.close(),
      onClose: (l) => t.onClose(l),
      readRegisters: (...a) => later(t.readRegisters(...a)),
      readBits: (...a) => later(t.readBits(...a)),
      writeRegisters: (...a) => t.writeRegisters(...a),
      writeCoil: (...a) => t.writeCoil(...a),
    };
    return w;
  };
}

interface Rig {
  fake: FakeClock;
  clock: LateClock;
  bus: RecordingBus;
  metrics: Metrics;
  adapter: ModbusAdapter;
  ts: () => number[];
  /** Close while time moves on (a slow read in flight ends on the clock). */
  close: () => Promise<void>;
}

async function rig(opts: { readDelay?: () => number; intervalMs?: number; late?: number } = {}): Promise<Rig> {
  const fake = new FakeClock();
  const clock = new LateClock(fake);
  clock.late = opts.late ?? 2;
  const bus = new RecordingBus();
  const mem = new MemoryModbus();
  mem.set(1, 0, [10, 20]);
  const metrics = createMetrics({ clock });
  const config = validateConfig(modbusConfigSpec, {
    siteId: 's',
    statusHeartbeatMs: 0,
    registerMaps: { m: { points: [{ name: 'a', address: 0, functionCode: 3, type: 'uint16' }] } },
    devices: [{ assetId: 'dev-1', connection: { type: 'tcp', host: 'gw', port: 502 }, unitId: 1, pollIntervalMs: opts.intervalMs ?? 1000, timeoutMs: 5000, profile: { type: 'registerMap', map: 'm' } }],
  });
  const transport = opts.readDelay ? slowReads(mem.factory, clock, opts.readDelay) : mem.factory;
  const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics, clock, transport }, config);
  await adapter.start();
  const close = async (): Promise<void> => {
    const closing = adapter.close();
    await fake.advanceAsync(5000);
    await closing;
    expect(fake.pending).toBe(0);
  };
  return { fake, clock, bus, metrics, adapter, ts: () => bus.of<TelemetryMessage>('rawTelemetry').map((t) => t.ts), close };
}

const diffs = (xs: number[]): number[] => xs.slice(1).map((x, i) => x - xs[i]!);

describe('poll schedule', () => {
  test('timers that fire 2 ms late delay each poll by 2 ms, not every later one: 101 polls 1000 ms apart', async () => {
    const r = await rig();
    const t0 = r.fake.now();
    await r.fake.advanceAsync(100_010);
    const ts = r.ts();
    expect(ts).toHaveLength(101);
    // The first poll at start, each later one its slot plus the 2 ms its timer was late; the slots
    // are 1000 ms apart.
    expect(ts.map((t, k) => t - (t0 + k * 1000))).toEqual(ts.map((_t, k) => (k === 0 ? 0 : 2)));
    expect(new Set(diffs(ts.slice(1)))).toEqual(new Set([1000]));
    expect(r.adapter.stats()[0]!.overruns).toBe(0);
    await r.close();
  });

  test('a cycle longer than the interval skips the slot it overlaps (an overrun) and polls on the next slot', async () => {
    // Every read takes 1500 ms: the slot at +1000 finds the cycle of +0 running.
    const r = await rig({ readDelay: () => 1500, late: 0 });
    const t0 = r.fake.now();
    await r.fake.advanceAsync(10_000);
    const ts = r.ts();
    // Polls on the even slots only (the sample time is when the read goes out: the slot itself).
    expect(ts.map((t) => t - t0)).toEqual([0, 2000, 4000, 6000, 8000]);
    expect(r.adapter.stats()[0]!.overruns).toBe(5);
    expect(r.metrics.snapshot().dropped['poll_overrun']).toBe(5);
    await r.close();
  });

  test('slots that passed while the timer could not fire are counted as overruns; polling goes on at the next slot', async () => {
    const r = await rig({ late: 0 });
    const t0 = r.fake.now();
    await r.fake.advanceAsync(1500);
    expect(r.ts().map((t) => t - t0)).toEqual([0, 1000]);
    // The timer for the slot at +3000 (set at +2000) fires 2500 ms late (an event loop held up):
    // the slots at +4000 and +5000 pass meanwhile.
    r.clock.late = 2500;
    await r.fake.advanceAsync(1000);
    r.clock.late = 0;
    await r.fake.advanceAsync(10_000);
    expect(r.ts().map((t) => t - t0)).toEqual([0, 1000, 2000, 5500, 6000, 7000, 8000, 9000, 10_000, 11_000, 12_000]);
    expect(r.adapter.stats()[0]!.overruns).toBe(2);
    await r.close();
  });

  test.each([
    ['back', -3_600_000],
    ['forward', 3_600_000],
  ])('a wall-clock step %s by an hour re-anchors the slots: polling goes on every interval, nothing counted as overruns', async (_dir, step) => {
    const r = await rig({ late: 0 });
    await r.fake.advanceAsync(3000);
    const before = r.ts().length;
    r.clock.skew = step;
    await r.fake.advanceAsync(10_000);
    const after = r.ts().slice(before);
    expect(after.length).toBeGreaterThanOrEqual(9);
    expect(after.length).toBeLessThanOrEqual(11);
    expect(diffs(after).every((d) => d === 1000)).toBe(true);
    expect(r.adapter.stats()[0]!.overruns).toBe(0);
    await r.close();
  });
});
