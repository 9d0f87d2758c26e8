/**
 * Commit notices (docs/store.md "Readers"): the Processor is the store's only writer, so it tells
 * readers what each commit made durable, as time ranges per asset, on the contract's store commits
 * topic. The store reports commits by ticket; every append up to a committed ticket is durable, so
 * ranges are kept per ticket until a commit covers them.
 */
import { randomUUID } from 'node:crypto';
import { CONTRACT_VERSION, type StoreCommitNotice, type StoreCommitRange } from '../lib/contract';
import type { StoreSample } from '../lib/store';

/** Samples of one asset further apart than this go into separate ranges. */
export const NOTICE_GAP_MS = 60_000;
/** Pending entries kept while commits fail; beyond, entries of an asset are merged. */
const MAX_PENDING = 10_000;

interface Pending {
  ticket: number;
  assetId: string;
  from: number;
  to: number;
  samples: number;
}

export class CommitNotices {
  readonly runId = randomUUID();
  private seq = 0;
  private pending: Pending[] = [];

  /** Samples of one append (one message: one asset) that the store accepted under `ticket`. */
  appended(ticket: number, samples: readonly StoreSample[]): void {
    if (samples.length === 0) return;
    const byAsset = new Map<string, Pending>();
    for (const s of samples) {
      const p = byAsset.get(s.assetId);
      if (!p) byAsset.set(s.assetId, { ticket, assetId: s.assetId, from: s.ts, to: s.ts, samples: 1 });
      else {
        p.from = Math.min(p.from, s.ts);
        p.to = Math.max(p.to, s.ts);
        p.samples++;
      }
    }
    this.pending.push(...byAsset.values());
    if (this.pending.length > MAX_PENDING) this.pending = merge(this.pending, Infinity).map((r) => ({ ...r, ticket }));
  }

  /** The notice for a commit up to `ticket`, or undefined when it covered nothing of ours. */
  committed(ticket: number, now: number, siteId: string, lateLogId?: number): StoreCommitNotice | undefined {
    const done: Pending[] = [];
    const left: Pending[] = [];
    for (const p of this.pending) (p.ticket <= ticket ? done : left).push(p);
    this.pending = left;
    if (done.length === 0 && lateLogId === undefined) return undefined;
    return {
      schemaVersion: CONTRACT_VERSION,
      siteId,
      ts: now,
      runId: this.runId,
      seq: ++this.seq,
      ranges: merge(done, NOTICE_GAP_MS),
      ...(lateLogId !== undefined ? { lateLogId } : {}),
    };
  }
}

/** Per asset, ranges sorted by time, merged when closer than `gapMs`. */
function merge(list: readonly Pending[], gapMs: number): StoreCommitRange[] {
  const byAsset = new Map<string, Pending[]>();
  for (const p of list) {
    let l = byAsset.get(p.assetId);
    if (!l) byAsset.set(p.assetId, (l = []));
    l.push(p);
  }
  const out: StoreCommitRange[] = [];
  for (const [assetId, l] of byAsset) {
    l.sort((a, b) => a.from - b.from);
    let cur: StoreCommitRange | undefined;
    for (const p of l) {
      if (cur && p.from - cur.to <= gapMs) {
        cur.to = Math.max(cur.to, p.to);
        cur.samples += p.samples;
      } else {
        if (cur) out.push(cur);
        cur = { assetId, from: p.from, to: p.to, samples: p.samples };
      }
    }
    if (cur) out.push(cur);
  }
  return out;
}
