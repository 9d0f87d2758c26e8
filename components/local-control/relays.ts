/**
 * Local alarm outputs on relays (docs/local-control.md "Relays and acknowledgement"): the horn
 * (`outputs.relays.critical`) is on while any critical alarm is active and not acknowledged, the
 * beacon (`outputs.relays.high`) while any alarm of severity high or critical is active. Both are
 * plain coils of an I/O asset, written by the actuator with `write` commands, only on change.
 * Several levels may share one relay (it is on when any of them wants it).
 */
import type { AlarmMessage, DecisionInput } from '../lib/contract';
import type { AssetPoint, LocalControlConfig } from './config';
import { severityRank } from './rules';

export interface RelayWant {
  key: string;
  assetId: string;
  point: string;
  value: boolean;
  /** `relay-critical`, `relay-high`, `relay-critical-high`: the decisions' ruleId. */
  ruleId: string;
  /** The alarms that keep it on (newest first, at most 16). */
  causes: AlarmMessage[];
}

export function relayKey(r: AssetPoint): string {
  return `${r.assetId}|relay:${r.point}`;
}

const MAX_CAUSES = 16;

export function relayWants(outputs: LocalControlConfig['outputs'], active: Iterable<AlarmMessage>, acked: (alarmId: string) => boolean): Map<string, RelayWant> {
  const list = [...active];
  const out = new Map<string, RelayWant>();
  const levels: Array<['critical' | 'high', AssetPoint | undefined]> = [
    ['critical', outputs.relays.critical],
    ['high', outputs.relays.high],
  ];
  for (const [level, ref] of levels) {
    if (!ref) continue;
    const causes = level === 'critical' ? list.filter((a) => a.severity === 'critical' && !acked(a.alarmId)) : list.filter((a) => severityRank(a.severity) <= severityRank('high'));
    const key = relayKey(ref);
    const prev = out.get(key);
    const merged = [...(prev?.causes ?? []), ...causes].sort((a, b) => b.ts - a.ts).slice(0, MAX_CAUSES);
    out.set(key, {
      key,
      assetId: ref.assetId,
      point: ref.point,
      value: (prev?.value ?? false) || causes.length > 0,
      ruleId: prev ? `${prev.ruleId}-${level}` : `relay-${level}`,
      causes: merged,
    });
  }
  return out;
}

export function causeInputs(causes: readonly AlarmMessage[]): DecisionInput[] {
  return causes.map((a) => ({ source: 'alarm', ref: `${a.assetId}/${a.type}/${a.alarmId}`, value: a.severity, ts: a.ts }));
}
