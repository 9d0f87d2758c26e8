/**
 * Per-point checks and conversion (dCMMS edge specification §3.1 step 3, §3.2 `validate`;
 * docs/specification.md): the point's range (configured, with the specification's defaults), its
 * unit converted to the canonical unit, and its value turned into the number the store keeps.
 * Resolved once per point name and cached.
 */
import type { RangeRule, UnitConversion } from '../config';
import { compileGlobs, type NameMatcher } from './match';

export interface RangeSpec {
  min: number;
  max: number;
  action: 'reject' | 'flag';
}

export interface PointSpec {
  /** First range rule naming the point, if any. */
  range: RangeSpec | undefined;
  /** A range rule names it: the point is numeric (a string is `string_for_number`). */
  known: boolean;
}

const MAX_CACHED = 100_000;

export class PointRules {
  private readonly ranges: Array<{ match: NameMatcher; spec: RangeSpec }>;
  private readonly cache = new Map<string, PointSpec>();
  private readonly units: Map<string, UnitConversion & { divisor: number | undefined }>;

  constructor(ranges: readonly RangeRule[], conversions: Readonly<Record<string, UnitConversion>>) {
    this.ranges = ranges.map((r) => ({ match: compileGlobs(r.points), spec: { min: r.min, max: r.max, action: r.action } }));
    this.units = new Map(
      Object.entries(conversions).map(([from, c]) => {
        // mA -> A is better computed as v / 1000 than v * 0.001: decimal values stay decimal
        // (docs/store.md: the chunk's decimal mode needs exact m / 10^k values).
        const inv = c.factor !== 0 ? 1 / c.factor : 0;
        const divisor = c.factor > 0 && c.factor < 1 && Number.isInteger(inv) ? inv : undefined;
        return [from, { ...c, divisor }];
      }),
    );
  }

  spec(point: string): PointSpec {
    let s = this.cache.get(point);
    if (!s) {
      const hit = this.ranges.find((r) => r.match(point));
      s = { range: hit?.spec, known: hit !== undefined };
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.cache.set(point, s);
    }
    return s;
  }

  /** Canonical value of a numeric reading in `unit` (no allocation: this is the hot path). */
  convert(v: number, unit: string | undefined): number {
    if (unit === undefined) return v;
    const c = this.units.get(unit);
    if (!c) return v;
    const scaled = c.divisor !== undefined ? v / c.divisor : c.factor === 1 ? v : v * c.factor;
    return c.offset === 0 ? scaled : scaled + c.offset;
  }

  /** The canonical unit a unit converts to (for strings/booleans nothing is converted). */
  unitOf(unit: string | undefined): string | undefined {
    return unit === undefined ? undefined : (this.units.get(unit)?.to ?? unit);
  }
}
