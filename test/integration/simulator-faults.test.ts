/**
 * Every fault kind of the site simulator, injected and cleared, read through modbus-serial's client
 * (a real client written by others) on loopback: the fault must change the faulted device's
 * registers, and once it is cleared every register must be back to normal. "Normal" is a twin
 * simulator (same seed, same injected clock, read at the same moments) that never had the fault:
 * after the clear the two must serve identical registers, bit for bit.
 */
import ModbusRTU from 'modbus-serial';
import { createSiteSimulator, FAULT_KINDS, SUNSPEC_BASE, UNIT_IDS, type FaultSpec, type SiteSimulator } from '../../scripts/simulator';

const NOON = Date.UTC(2025, 5, 21, 12, 10, 0); // 12:10 UTC, solar noon at longitude -2.5: the tracker moves fastest
const MINUTE = 60e3;

/** Every register and bit a device serves, keyed by table. */
type Snapshot = Record<string, number[] | boolean[]>;

async function readSunSpec(client: ModbusRTU): Promise<number[]> {
  const out = (await client.readHoldingRegisters(SUNSPEC_BASE, 2)).data;
  let addr = SUNSPEC_BASE + 2;
  for (let i = 0; i < 50; i++) {
    const [id, len] = (await client.readHoldingRegisters(addr, 2)).data;
    out.push(id, len);
    if (id === 0xffff) return out;
    for (let o = 0; o < len; o += 125) out.push(...(await client.readHoldingRegisters(addr + 2 + o, Math.min(125, len - o))).data);
    addr += 2 + len;
  }
  throw new Error('no end marker');
}

/** Read everything one unit serves: the SunSpec image, or every table its register map declares. */
async function snapshot(client: ModbusRTU, sim: SiteSimulator, unit: number): Promise<Snapshot> {
  const d = sim.devices().find((x) => x.unitId === unit);
  if (!d) throw new Error(`no unit ${unit}`);
  client.setID(unit);
  if (d.profile === 'sunspec') return { holding: await readSunSpec(client) };
  const points = d.points ?? [];
  const end = (fc: number): number => Math.max(0, ...points.filter((p) => p.functionCode === fc).map((p) => p.address + (p.type === 'string' ? (p.length ?? 1) : p.type.endsWith('32') ? 2 : 1)));
  const out: Snapshot = {};
  if (end(3) > 0) out.holding = (await client.readHoldingRegisters(0, end(3))).data;
  if (end(4) > 0) out.input = (await client.readInputRegisters(0, end(4))).data;
  if (end(1) > 0) out.coils = (await client.readCoils(0, end(1))).data.slice(0, end(1));
  if (end(2) > 0) out.discrete = (await client.readDiscreteInputs(0, end(2))).data.slice(0, end(2));
  return out;
}

async function connect(sim: SiteSimulator, timeoutMs = 1000): Promise<ModbusRTU> {
  const c = new ModbusRTU();
  await c.connectTCP('127.0.0.1', { port: sim.port });
  c.setTimeout(timeoutMs);
  return c;
}

const close = (c: ModbusRTU): Promise<void> => new Promise<void>((done) => c.close(() => done()));

interface Case {
  name: string;
  spec: FaultSpec;
  /** The unit whose registers the fault changes (checked while the fault is active). */
  unit: number;
  /** Simulated minutes the fault stays active (faults that act over time need some). */
  minutes: number;
  /**
   * Units compared with the twin after the clear. All of them, except where the fault legitimately
   * leaves a trace in counters: a stuck or offset tracker changes the energy the inverters and the
   * reference cell collected meanwhile, so only the tracker itself must be back to normal.
   */
  after: 'all' | number[];
}

const CASES: Case[] = [
  { name: 'string-fault', spec: { kind: 'string-fault', unit: 1, string: 2 }, unit: 1, minutes: 0, after: 'all' },
  { name: 'over-temperature', spec: { kind: 'over-temperature', unit: 2 }, unit: 2, minutes: 0, after: 'all' },
  { name: 'soiling (every inverter)', spec: { kind: 'soiling' }, unit: 3, minutes: 0, after: 'all' },
  { name: 'soiling (one inverter)', spec: { kind: 'soiling', unit: 2, loss: 0.5 }, unit: 2, minutes: 0, after: 'all' },
  { name: 'comm-loss', spec: { kind: 'comm-loss', unit: UNIT_IDS.weather }, unit: UNIT_IDS.weather, minutes: 10, after: 'all' },
  { name: 'frozen', spec: { kind: 'frozen', unit: 1 }, unit: 1, minutes: 10, after: 'all' },
  { name: 'ground-fault', spec: { kind: 'ground-fault', unit: 3 }, unit: 3, minutes: 0, after: 'all' },
  { name: 'ground-fault on a string (seen by its combiner box)', spec: { kind: 'ground-fault', unit: 2, string: 3 }, unit: UNIT_IDS.firstCombiner + 1, minutes: 0, after: 'all' },
  { name: 'comm-loss of a combiner box', spec: { kind: 'comm-loss', unit: UNIT_IDS.firstCombiner }, unit: UNIT_IDS.firstCombiner, minutes: 10, after: 'all' },
  { name: 'degradation', spec: { kind: 'degradation', unit: 1, string: 3 }, unit: 1, minutes: 0, after: 'all' },
  { name: 'series-resistance', spec: { kind: 'series-resistance', unit: 2, string: 1 }, unit: 2, minutes: 0, after: 'all' },
  { name: 'shunt-resistance', spec: { kind: 'shunt-resistance', unit: 3, string: 4, factor: 0.1 }, unit: 3, minutes: 0, after: 'all' },
  { name: 'tracker-stuck', spec: { kind: 'tracker-stuck' }, unit: UNIT_IDS.tracker, minutes: 10, after: [UNIT_IDS.tracker] },
  { name: 'tracker-offset', spec: { kind: 'tracker-offset', offsetDeg: 8 }, unit: UNIT_IDS.tracker, minutes: 10, after: [UNIT_IDS.tracker] },
  { name: 'digital-input fireAlarm true (normally false)', spec: { kind: 'digital-input', input: 'fireAlarm', value: true }, unit: UNIT_IDS.io, minutes: 0, after: 'all' },
  { name: 'digital-input 0 (doorClosed) false (normally true)', spec: { kind: 'digital-input', input: 0, value: false }, unit: UNIT_IDS.io, minutes: 0, after: 'all' },
  { name: 'digital-input breakerClosed false (follows the breaker)', spec: { kind: 'digital-input', input: 'breakerClosed', value: false }, unit: UNIT_IDS.io, minutes: 0, after: 'all' },
];

describe('site simulator: every fault kind cleared restores the plant', () => {
  it('covers every fault kind', () => {
    expect([...new Set(CASES.map((c) => c.spec.kind))].sort()).toEqual([...FAULT_KINDS].sort());
  });

  describe.each(CASES)('$name', (c) => {
    const clock = { t: 1_000_000, now(): number { return this.t; } };
    let faulted: SiteSimulator;
    let twin: SiteSimulator;
    let a: ModbusRTU;
    let b: ModbusRTU;
    const units = (): number[] => faulted.devices().map((d) => d.unitId);
    const all = async (client: ModbusRTU, sim: SiteSimulator, which: number[]): Promise<Record<number, Snapshot>> => {
      const out: Record<number, Snapshot> = {};
      for (const u of which) out[u] = await snapshot(client, sim, u);
      return out;
    };

    beforeAll(async () => {
      const opts = { clock, startTime: new Date(NOON), cloudiness: 0.3, minUpdateMs: 0, seed: 11 };
      [faulted, twin] = await Promise.all([createSiteSimulator(opts), createSiteSimulator(opts)]);
      [a, b] = await Promise.all([connect(faulted), connect(twin)]);
    });

    afterAll(async () => {
      await Promise.all([close(a), close(b)]);
      await Promise.all([faulted.close(), twin.close()]);
    });

    it('changes the device while active, and every register is back to normal after the clear', async () => {
      // The twins start identical.
      expect(await all(a, faulted, units())).toEqual(await all(b, twin, units()));

      const id = faulted.injectFault(c.spec);
      clock.t += c.minutes * MINUTE;
      if (c.spec.kind === 'comm-loss') {
        // The unit does not answer at all (a fresh client: a timed-out request leaves the old one busy).
        const probe = await connect(faulted, 300);
        // modbus-serial rejects with a plain object, not an Error.
        const err = await snapshot(probe, faulted, c.unit).then(
          () => ({ message: 'answered' }),
          (e: { message: string }) => e,
        );
        expect(err.message).toMatch(/Timed out/);
        await close(probe);
        await snapshot(b, twin, c.unit);
      } else {
        // The fault shows in the faulted unit's registers (so the comparison below can tell).
        expect(await snapshot(a, faulted, c.unit)).not.toEqual(await snapshot(b, twin, c.unit));
      }
      // Keep both plants synced at the same instants: energy integrates between reads.
      for (const u of units()) if (!(c.spec.kind === 'comm-loss' && u === c.unit)) await snapshot(a, faulted, u);
      await all(b, twin, units());

      expect(faulted.clearFault(id)).toBe(1);
      expect(faulted.faults()).toEqual([]);
      const compared = c.after === 'all' ? units() : c.after;
      // At once (except a stuck or offset tracker, which needs to catch up), and a simulated minute later.
      if (c.spec.kind !== 'tracker-stuck' && c.spec.kind !== 'tracker-offset') expect(await all(a, faulted, compared)).toEqual(await all(b, twin, compared));
      clock.t += MINUTE;
      expect(await all(a, faulted, compared)).toEqual(await all(b, twin, compared));
      expect(faulted.state().io).toEqual(twin.state().io);
      expect(faulted.state().combiners).toEqual(twin.state().combiners);
    });
  });
});
