/**
 * `control_failed` (docs/local-control.md "Commands"): LocalControl's own alarm, severity high,
 * one per asset, raised when an action's last attempt failed (updated if another fails while it
 * is active) and cleared when a later action on that asset succeeds. It goes through the alarm
 * journal like every alarm (docs/alarms.md), so no consumer misses it.
 */
import { randomUUID } from 'node:crypto';
import type { NewTransition } from '../lib/alarm-journal';
import type { Clock } from '../lib/clock';
import { CONTRACT_VERSION, type AlarmMessage } from '../lib/contract';
import { clip, type ChainSpec } from './commands';

export const CONTROL_FAILED = 'control_failed';

export class FailureAlarms {
  private readonly byAsset = new Map<string, AlarmMessage>();

  constructor(
    private readonly o: {
      clock: Clock;
      siteId: () => string;
      /** Our short name, the alarms' source. */
      source: string;
      /** Journal and publish a transition. */
      emit: (t: NewTransition) => void;
    },
  ) {}

  /** The journal's active alarms: those of ours still raised. */
  load(active: readonly AlarmMessage[]): void {
    this.byAsset.clear();
    for (const a of active) if (a.type === CONTROL_FAILED) this.byAsset.set(a.assetId, a);
  }

  get size(): number {
    return this.byAsset.size;
  }

  failed(spec: ChainSpec, message: string): void {
    const prev = this.byAsset.get(spec.assetId);
    const alarm: AlarmMessage = {
      schemaVersion: CONTRACT_VERSION,
      siteId: this.o.siteId(),
      assetId: spec.assetId,
      alarmId: prev?.alarmId ?? randomUUID(),
      type: CONTROL_FAILED,
      severity: 'high',
      state: 'raised',
      ts: this.o.clock.now(),
      source: this.o.source,
      message: clip(`${spec.action} on ${spec.assetId} (${spec.ruleId}) failed: ${message}`),
      details: { ruleId: spec.ruleId, action: spec.action, decisionId: spec.decisionId },
    };
    this.byAsset.set(spec.assetId, alarm);
    this.o.emit(alarm);
  }

  succeeded(spec: ChainSpec): void {
    const prev = this.byAsset.get(spec.assetId);
    if (!prev) return;
    this.byAsset.delete(spec.assetId);
    this.o.emit({ ...prev, state: 'cleared', ts: this.o.clock.now(), message: clip(`${spec.action} on ${spec.assetId} (${spec.ruleId}) succeeded`) });
  }
}
