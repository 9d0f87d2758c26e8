/**
 * Two of the interlocks (docs/local-control.md "Interlocks") as their own pieces: the per-asset
 * rate limit and the cap on the share of the site's rated capacity automation may curtail or shut
 * down at once. The actuator runs them with the others, in order.
 */
import type { LocalControlConfig } from './config';
import type { Fleet } from './inputs';

/** Automated actions per asset in a sliding window (the timestamps of each action's first command). */
export class RateLimiter {
  private readonly byAsset = new Map<string, number[]>();

  add(asset: string, at: number): void {
    let list = this.byAsset.get(asset);
    if (!list) this.byAsset.set(asset, (list = []));
    list.push(at);
  }

  /** Actions on `asset` after `since`. */
  count(asset: string, since: number): number {
    const list = this.byAsset.get(asset);
    if (!list) return 0;
    while (list.length && (list[0] ?? 0) <= since) list.shift();
    return list.length;
  }

  /** A backward clock jump: entries "in the future" would hold the window shut. */
  dropAfter(now: number): void {
    for (const list of this.byAsset.values()) {
      const keep = list.filter((t) => t <= now);
      list.splice(0, list.length, ...keep);
    }
  }

  clear(): void {
    this.byAsset.clear();
  }
}

/**
 * Would curtailing or shutting down `asset` take automation past maxCurtailedShare of the site's
 * rated capacity? An inverter under any automated limit or shutdown counts with its full rating (a
 * 50 % limit on every inverter is "the whole site" here: that is what a bad sensor type on every
 * inverter would do). Unknown ratings block: the share cannot be known. `held`: automation has
 * (or is about to have) curtailed or shut that inverter down.
 */
export function capacityBlock(asset: string, fleet: Fleet, cfg: Readonly<LocalControlConfig>, held: (inverter: string) => boolean): string | undefined {
  const { watts, unknown } = fleet.total();
  const own = fleet.capacity(asset);
  if (own === undefined) return `capacity_unknown: the rated power of ${asset} is not known (capacityW, or a rating point such as ${cfg.ratingPoints.join(', ') || '120.WRtg'} in telemetry)`;
  if (unknown.length > 0) return `capacity_unknown: the rated power of ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''} is not known, so the site's capacity is not`;
  let sum = 0;
  for (const inv of fleet.all()) if (inv !== asset && held(inv)) sum += fleet.capacity(inv) ?? 0;
  const share = (sum + own) / watts;
  const max = cfg.maxCurtailedShare;
  if (share > max + 1e-9) return `capacity_cap: ${Math.round(sum + own)} W of the site's ${Math.round(watts)} W (${Math.round(share * 100)} %) would be curtailed or shut down by automation, more than maxCurtailedShare ${Math.round(max * 100)} %`;
  return undefined;
}
