/**
 * SunSpec model 123 (Immediate Controls) as an inverter carries it out, with its timers. The model
 * (SunSpec Information Model, model 123; its points follow IEC 61850-90-7 INV1 "connect/disconnect",
 * INV2 "adjust maximum generation level", INV3 "fixed power factor") gives each function a group of
 * points: the setpoint(s), an enable (`Conn` for INV1), and three timers in seconds:
 *
 * - `*_WinTms`, the time window: the change takes effect at a random instant within the window after
 *   the command (so that many inverters told at once do not all step together). 0: at once.
 * - `*_RvrtTms`, the revert (timeout) period: this long after the change took effect the function
 *   returns to its normal state by itself (limit disabled, inverter connected, fixed PF disabled),
 *   unless a new command came first. 0: never. This is what ends a curtailment when the gateway
 *   that ordered it dies.
 * - `*_RmpTms`, the ramp time: the output limit moves linearly from where it is to the new value
 *   over this time (the power factor has no physics here, so only the limit ramps). 0: a step.
 *
 * Decisions (where the model's one-line descriptions leave room):
 * - Every write touching a point of a group is a command for that group: the group's registers
 *   as they then stand are what takes effect, so writing the enable again refreshes the command
 *   and restarts its revert timer. A write cancels a revert still to come (the gateway is alive);
 *   the new revert counts from the moment the new command takes effect.
 * - The registers show what was written at once (a gateway's read-back check passes); the output
 *   follows when the window has passed. A revert changes the register (`WMaxLim_Ena` DISABLED,
 *   `Conn` CONNECT, `OutPFSet_Ena` DISABLED) so that it is visible; setpoints and timers stay.
 * - The instant within the window comes from the simulator's seed (twins agree); a revert ramps
 *   back with the group's ramp time, as any other change of the limit.
 * - The VAr percent group (`VArPct_*`) keeps what is written, with no effect and no timers.
 *
 * Time is simulated milliseconds; the plant calls `advance` at every event instant (`nextEvent`).
 */
import { hash01 } from './physics';

export type ControlGroupName = 'conn' | 'limit' | 'pf';

interface GroupDef {
  name: ControlGroupName;
  points: readonly string[];
  /** The point that switches the function, and its normal value (what a revert returns it to). */
  switch: string;
  normal: number;
  win: string;
  rvrt: string;
  rmp?: string;
}

const GROUPS: readonly GroupDef[] = [
  { name: 'conn', points: ['Conn', 'Conn_WinTms', 'Conn_RvrtTms'], switch: 'Conn', normal: 1, win: 'Conn_WinTms', rvrt: 'Conn_RvrtTms' },
  {
    name: 'limit',
    points: ['WMaxLimPct', 'WMaxLimPct_WinTms', 'WMaxLimPct_RvrtTms', 'WMaxLimPct_RmpTms', 'WMaxLim_Ena'],
    switch: 'WMaxLim_Ena',
    normal: 0,
    win: 'WMaxLimPct_WinTms',
    rvrt: 'WMaxLimPct_RvrtTms',
    rmp: 'WMaxLimPct_RmpTms',
  },
  { name: 'pf', points: ['OutPFSet', 'OutPFSet_WinTms', 'OutPFSet_RvrtTms', 'OutPFSet_RmpTms', 'OutPFSet_Ena'], switch: 'OutPFSet_Ena', normal: 0, win: 'OutPFSet_WinTms', rvrt: 'OutPFSet_RvrtTms' },
];

/** The model 123 read/write points at power-up: connected, no limit, unity power factor, no timers. */
export const MODEL_123_DEFAULTS: Readonly<Record<string, number>> = {
  Conn: 1,
  Conn_WinTms: 0,
  Conn_RvrtTms: 0,
  WMaxLimPct: 100,
  WMaxLimPct_WinTms: 0,
  WMaxLimPct_RvrtTms: 0,
  WMaxLimPct_RmpTms: 0,
  WMaxLim_Ena: 0,
  OutPFSet: 1,
  OutPFSet_WinTms: 0,
  OutPFSet_RvrtTms: 0,
  OutPFSet_RmpTms: 0,
  OutPFSet_Ena: 0,
  VArPct_Ena: 0,
};

type Values = Record<string, number | string>;

interface GroupState {
  /** The group's points the inverter acts on now. */
  inForce: Values;
  /** A command waiting for its time window. */
  pending?: { at: number; values: Values };
  revertAt?: number;
}

const seconds = (v: number | string | undefined): number => (typeof v === 'number' && v > 0 ? v * 1000 : 0);

export class ImmediateControls {
  /** The model 123 read/write points as the image shows them: written, or changed by a revert. */
  readonly registers: Values = { ...MODEL_123_DEFAULTS };
  private readonly groups = new Map<ControlGroupName, GroupState>();
  /** The output limit (% of WMax, 100 = none) moving from `from` to `to` between `start` and `end`. */
  private ramp: { from: number; to: number; start: number; end: number } | undefined;
  private commands = 0;

  constructor(private readonly seed: number) {
    for (const g of GROUPS) this.groups.set(g.name, { inForce: pick(this.registers, g.points) });
  }

  /** A write of model 123 points at `now`. */
  write(now: number, updates: Values): void {
    Object.assign(this.registers, updates);
    for (const g of GROUPS) {
      if (!g.points.some((p) => p in updates)) continue;
      const st = this.state(g.name);
      const window = seconds(this.registers[g.win]);
      const delay = window > 0 ? Math.floor(hash01(this.seed, ++this.commands) * (window + 1)) : 0;
      st.revertAt = undefined;
      st.pending = { at: now + delay, values: pick(this.registers, g.points) };
      if (delay === 0) this.takeEffect(g, st, now);
    }
  }

  /** The next instant after which something changes by itself (a window ends, a revert or a ramp is due). */
  nextEvent(): number | undefined {
    let next = this.ramp?.end;
    for (const st of this.groups.values()) {
      for (const t of [st.pending?.at, st.revertAt]) if (t !== undefined && (next === undefined || t < next)) next = t;
    }
    return next;
  }

  /** Carry out what is due at `now` or before; true when something changed. */
  advance(now: number): boolean {
    let changed = false;
    for (const g of GROUPS) {
      const st = this.state(g.name);
      if (st.pending && st.pending.at <= now) {
        this.takeEffect(g, st, st.pending.at);
        changed = true;
      }
      if (st.revertAt !== undefined && st.revertAt <= now) {
        this.revert(g, st, st.revertAt);
        changed = true;
      }
    }
    if (this.ramp && this.ramp.end <= now) {
      this.ramp = undefined;
      changed = true;
    }
    return changed;
  }

  get connected(): boolean {
    return this.state('conn').inForce.Conn !== 0;
  }

  /** The limit in force as commanded: enabled, and its percent (the ramp aside). */
  get limit(): { enabled: boolean; pct: number } {
    const v = this.state('limit').inForce;
    return { enabled: v.WMaxLim_Ena === 1, pct: typeof v.WMaxLimPct === 'number' ? v.WMaxLimPct : 100 };
  }

  /** The output cap at `t`, % of WMax (100 = none), along a ramp under way. */
  capPct(t: number): number {
    const target = this.limit.enabled ? this.limit.pct : 100;
    const r = this.ramp;
    if (r === undefined || t >= r.end) return target;
    if (t <= r.start) return r.from;
    return r.from + ((r.to - r.from) * (t - r.start)) / (r.end - r.start);
  }

  /** Commands waiting for their window, and reverts to come (simulated ms), by group. */
  timers(): { pending: Partial<Record<ControlGroupName, number>>; revertAt: Partial<Record<ControlGroupName, number>> } {
    const pending: Partial<Record<ControlGroupName, number>> = {};
    const revertAt: Partial<Record<ControlGroupName, number>> = {};
    for (const [name, st] of this.groups) {
      if (st.pending) pending[name] = st.pending.at;
      if (st.revertAt !== undefined) revertAt[name] = st.revertAt;
    }
    return { pending, revertAt };
  }

  private state(name: ControlGroupName): GroupState {
    const st = this.groups.get(name);
    if (st === undefined) throw new Error(`no control group ${name}`);
    return st;
  }

  private takeEffect(g: GroupDef, st: GroupState, at: number): void {
    const values = st.pending?.values ?? st.inForce;
    st.pending = undefined;
    this.change(g, st, at, () => (st.inForce = values));
    const revert = seconds(values[g.rvrt]);
    st.revertAt = values[g.switch] !== g.normal && revert > 0 ? at + revert : undefined;
  }

  private revert(g: GroupDef, st: GroupState, at: number): void {
    st.revertAt = undefined;
    this.registers[g.switch] = g.normal;
    this.change(g, st, at, () => (st.inForce = { ...st.inForce, [g.switch]: g.normal }));
  }

  /** Apply a change of a group's values at `at`; the limit starts a ramp from where it was. */
  private change(g: GroupDef, st: GroupState, at: number, apply: () => void): void {
    if (g.name !== 'limit') {
      apply();
      return;
    }
    const from = this.capPct(at);
    apply();
    const to = this.capPct(Infinity);
    const ramp = seconds(st.inForce[g.rmp ?? '']);
    this.ramp = ramp > 0 && from !== to ? { from, to, start: at, end: at + ramp } : undefined;
  }
}

function pick(v: Values, names: readonly string[]): Values {
  const out: Values = {};
  for (const n of names) if (v[n] !== undefined) out[n] = v[n];
  return out;
}
