/**
 * SunSpec model-definition types and the library's one error class.
 *
 * The shapes mirror the SunSpec JSON model format (sunspec/models `json/`, schema.json: a model is
 * `{ id, group }`, a group has `points` then `groups`, each with `count`), normalised: the `M`/`S`
 * flags become booleans, `access` defaults to `R`, and the top group's two header points `ID` and
 * `L` are removed so that every offset is counted from the register after the header, as the
 * SunSpec Modbus specification counts them ("model length L excludes the ID and L registers").
 */

export type PointType =
  | 'int16'
  | 'uint16'
  | 'count'
  | 'acc16'
  | 'enum16'
  | 'bitfield16'
  | 'pad'
  | 'sunssf'
  | 'int32'
  | 'uint32'
  | 'acc32'
  | 'enum32'
  | 'bitfield32'
  | 'bitfield64'
  | 'ipaddr'
  | 'int64'
  | 'uint64'
  | 'acc64'
  | 'ipv6addr'
  | 'float32'
  | 'float64'
  | 'string'
  | 'eui48';

export interface PointDef {
  name: string;
  type: PointType;
  /** Size in 16-bit registers. */
  size: number;
  /** Scale factor: the name of a `sunssf` point (looked up in this group, then enclosing ones) or a constant. */
  sf?: string | number;
  units?: string;
  access: 'R' | 'RW';
  mandatory: boolean;
  static: boolean;
  symbols?: { name: string; value: number }[];
  label?: string;
}

export interface GroupDef {
  name: string;
  type: 'group' | 'sync';
  /**
   * Repetitions: absent = exactly one; a number (0 = as many as fit in the rest of the model,
   * e.g. model 160 `module`, model 126 `curve`); a string = the name of a point holding the count
   * (e.g. model 705 `NCrv`, `NPt`).
   */
  count?: number | string;
  points: PointDef[];
  groups: GroupDef[];
}

export interface ModelDef {
  id: number;
  name: string;
  label?: string;
  group: GroupDef;
}

/** Point value after scale factor; null when not implemented (the type's sentinel). */
export interface DecodedPoint {
  value: number | string | null;
  raw: number | bigint | string | null;
  units?: string;
  implemented: boolean;
  /** enum16/enum32: the symbol name of the value, when the model defines one. */
  symbol?: string;
  /** bitfield16/bitfield32: the names of the set bits (`BIT<n>` for bits the model does not name). */
  bits?: string[];
  /** The scale factor (exponent of ten) of a point that has one, also when the point reads not implemented (a write needs it). */
  sf?: number;
  /**
   * Set when the point's scale factor is itself not implemented or out of -10..10: the value is
   * unknowable, so `value` is null (never the raw number, which would be off by powers of ten).
   */
  badScaleFactor?: boolean;
}

export type DecodedPoints = Record<string, DecodedPoint>;

export interface DecodedModel {
  id: number;
  name: string;
  /** L: registers after the header. */
  length: number;
  points: DecodedPoints;
  /**
   * Groups as arrays of point maps, one entry per repetition. A group directly in the model is keyed
   * by its name (`module`); a nested one by its path with the parent's index (`Crv[0].Pt`,
   * `Crv[1].MustTrip`). Groups without a count are arrays of one.
   */
  groups: Record<string, DecodedPoints[]>;
}

export type SunSpecErrorCode =
  | 'UNKNOWN_MODEL'
  | 'BAD_MODEL'
  | 'UNKNOWN_POINT'
  | 'MODEL_TOO_SHORT'
  | 'GROUP_OVERRUN'
  | 'VALUE_OUT_OF_RANGE'
  | 'VALUE_INVALID'
  | 'BAD_SCALE_FACTOR'
  | 'NOT_WRITABLE';

export class SunSpecError extends Error {
  readonly code: string;
  constructor(code: SunSpecErrorCode, message: string) {
    super(message);
    this.name = 'SunSpecError';
    this.code = code;
  }
}
