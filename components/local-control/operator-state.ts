/**
 * What operators set that automation must respect across restarts (docs/local-control.md "Manual
 * mode" and "Relays and acknowledgement"): the assets in manual mode (by an operator request, kept
 * in LocalControl's database, or by the configuration's `manualAssets`, which only a deployment
 * changes) and the acknowledged alarms (the horn stays silent for them).
 */
import type { LocalControlConfig } from './config';
import type { LocalControlDb } from './db';

export class OperatorState {
  private readonly manual = new Map<string, { since: number; by: string }>();
  private readonly acks = new Map<string, { at: number; by: string }>();
  /** The latest acknowledgement (the input of the decision that silences the horn). */
  lastAck: { alarmId: string; by: string; at: number } | undefined;

  constructor(
    private readonly db: () => LocalControlDb | undefined,
    private readonly config: () => Readonly<LocalControlConfig>,
  ) {}

  load(db: LocalControlDb): void {
    this.manual.clear();
    this.acks.clear();
    for (const m of db.manualAssets()) this.manual.set(m.assetId, { since: m.since, by: m.by });
    for (const a of db.acks()) this.acks.set(a.alarmId, { at: a.at, by: a.by });
  }

  isManual(asset: string): boolean {
    return this.manual.has(asset) || this.config().manualAssets.includes(asset);
  }

  /** Why an asset is manual, for the blocked decision. */
  manualText(asset: string): string {
    const m = this.manual.get(asset);
    return `${asset} is in manual mode${m ? ` (set by ${m.by} at ${new Date(m.since).toISOString()})` : ' (configuration manualAssets)'}`;
  }

  manualAssets(): string[] {
    return [...new Set([...this.manual.keys(), ...this.config().manualAssets])].sort();
  }

  /** false: it was manual already. */
  setManual(asset: string, by: string, at: number): boolean {
    if (this.manual.has(asset)) return false;
    this.manual.set(asset, { since: at, by });
    this.db()?.setManual(asset, at, by);
    return true;
  }

  /** `configured`: manual by the configuration, which an operator request cannot lift. */
  setAutomatic(asset: string): 'done' | 'not_manual' | 'configured' {
    if (this.config().manualAssets.includes(asset)) return 'configured';
    if (!this.manual.delete(asset)) return 'not_manual';
    this.db()?.clearManual(asset);
    return 'done';
  }

  isAcked(alarmId: string): boolean {
    return this.acks.has(alarmId);
  }

  acknowledge(alarmId: string, by: string, at: number, active: boolean): 'done' | 'already' | 'not_active' {
    if (this.acks.has(alarmId)) return 'already';
    if (!active) return 'not_active';
    this.acks.set(alarmId, { at, by });
    this.lastAck = { alarmId, by, at };
    this.db()?.putAck(alarmId, at, by);
    return 'done';
  }

  /** Acknowledgements of alarms no longer active are forgotten. */
  forgetCleared(isActive: (alarmId: string) => boolean): void {
    for (const id of [...this.acks.keys()]) {
      if (isActive(id)) continue;
      this.acks.delete(id);
      this.db()?.removeAck(id);
    }
  }
}
