/**
 * A short, bounded hold for telemetry of an asset nobody announced yet. Start-up order is not
 * ours to choose: an adapter may publish its first polls before the Processor hears its device
 * status (the adapter repeats it on a heartbeat), so rejecting at once would lose the first
 * samples of every device, and with a quiet adapter all of them. Messages wait here up to
 * `holdMs`; if the asset is announced meanwhile they are processed in arrival order, otherwise
 * each is rejected `unknown_asset` when it expires. Bounded in messages and bytes: beyond, a
 * message is rejected at once (docs/processor.md).
 */
export interface QuarantineOptions {
  holdMs: number;
  maxMessages: number;
  maxBytes: number;
}

export interface Held {
  payload: unknown;
  topic: string | undefined;
  at: number;
  bytes: number;
}

export class Quarantine {
  private readonly byAsset = new Map<string, Held[]>();
  private messages = 0;
  private bytes = 0;

  constructor(private opts: QuarantineOptions) {}

  get size(): number {
    return this.messages;
  }

  get heldBytes(): number {
    return this.bytes;
  }

  setOptions(opts: QuarantineOptions): void {
    this.opts = opts;
  }

  /** Holds a message; false when the hold is off or full (the caller rejects it). */
  hold(assetId: string, payload: unknown, topic: string | undefined, bytes: number, now: number): boolean {
    if (this.opts.holdMs <= 0 || this.messages >= this.opts.maxMessages || this.bytes + bytes > this.opts.maxBytes) return false;
    let list = this.byAsset.get(assetId);
    if (!list) this.byAsset.set(assetId, (list = []));
    list.push({ payload, topic, at: now, bytes });
    this.messages++;
    this.bytes += bytes;
    return true;
  }

  has(assetId: string): boolean {
    return this.byAsset.has(assetId);
  }

  /** The asset is known now: its held messages, oldest first. */
  release(assetId: string): Held[] {
    const list = this.byAsset.get(assetId) ?? [];
    this.byAsset.delete(assetId);
    this.forget(list);
    return list;
  }

  /** Messages held longer than holdMs, per asset. */
  expire(now: number): Array<{ assetId: string; held: Held[] }> {
    const out: Array<{ assetId: string; held: Held[] }> = [];
    for (const [assetId, list] of this.byAsset) {
      let i = 0;
      while (i < list.length && now - (list[i] as Held).at >= this.opts.holdMs) i++;
      if (i === 0) continue;
      const gone = list.splice(0, i);
      if (list.length === 0) this.byAsset.delete(assetId);
      this.forget(gone);
      out.push({ assetId, held: gone });
    }
    return out;
  }

  /** Everything held (shutdown). */
  drain(): Array<{ assetId: string; held: Held[] }> {
    const out = [...this.byAsset].map(([assetId, held]) => ({ assetId, held }));
    this.byAsset.clear();
    this.messages = 0;
    this.bytes = 0;
    return out;
  }

  private forget(list: readonly Held[]): void {
    this.messages -= list.length;
    for (const h of list) this.bytes -= h.bytes;
  }
}
