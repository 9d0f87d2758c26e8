/**
 * What automation wants of a target, and how that becomes a decision and a command
 * (docs/local-control.md "Commands"). A target is an asset and a slot: `power` (curtail, restore,
 * shutdown, start), `string<k>` (a combiner box disconnect), `relay:<point>` (a relay).
 */
import type { ControlAction } from '../lib/contract';
import type { Params } from './commands';
import { stringNumber } from './rules';

export interface Target {
  key: string;
  asset: string;
  /** `power`, `string<k>` or `relay:<point>`. */
  slot: string;
  point?: string | undefined;
}

export type Want =
  | { kind: 'shutdown' }
  | { kind: 'start' }
  | { kind: 'restore' }
  | { kind: 'curtail'; percent: number; revertSeconds: number }
  | { kind: 'write'; point: string; value: boolean; as: 'isolate_string' | 'reconnect_string' | 'write' };

export function targetKey(asset: string, slot: string): string {
  return `${asset}|${slot}`;
}

export function wantKey(w: Want): string {
  return JSON.stringify(w);
}

/** The decision's action and parameters, and the command the adapter gets. */
export function describe(w: Want): { action: ControlAction; params: Params; command: { action: ControlAction; params: Params } } {
  switch (w.kind) {
    case 'curtail': {
      const params = { percent: w.percent, revertSeconds: w.revertSeconds };
      return { action: 'curtail', params, command: { action: 'curtail', params } };
    }
    case 'write': {
      const k = stringNumber(w.point);
      const params: Params = w.as === 'write' || k === undefined ? { point: w.point, value: w.value } : { point: w.point, string: k };
      return { action: w.as, params, command: { action: 'write', params: { point: w.point, value: w.value } } };
    }
    default:
      return { action: w.kind, params: {}, command: { action: w.kind, params: {} } };
  }
}

export function text(w: Want): string {
  const d = describe(w);
  const p = Object.entries(d.params).map(([k, v]) => `${k} ${String(v)}`).join(', ');
  return p ? `${d.action} (${p})` : d.action;
}

export function describeCtx(w: Want): { action: ControlAction; params: Params } {
  const d = describe(w);
  return { action: d.action, params: d.params };
}

/** The strongest demand on a target: shutdown, then the lowest curtailment, then restore; latched writes are alike. */
export function strongest<T extends { want: Want; hold: { since: number } }>(list: readonly T[]): T | undefined {
  const rank = (w: Want): number => (w.kind === 'shutdown' ? 0 : w.kind === 'curtail' ? 1 + w.percent / 1000 : w.kind === 'restore' ? 2 : 1);
  let best: T | undefined;
  for (const x of list) if (!best || rank(x.want) < rank(best.want) || (rank(x.want) === rank(best.want) && x.hold.since < best.hold.since)) best = x;
  return best;
}
