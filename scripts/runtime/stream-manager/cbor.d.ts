/** The part of `cbor` 5.0.1 (no bundled types) the Stream Manager uses. */
declare module 'cbor' {
  export function encode(...objs: unknown[]): Buffer;
  export function decodeFirstSync(input: Buffer | string, options?: object): unknown;
  export class Encoder {
    static encodeOne(obj: unknown, options?: { highWaterMark?: number; canonical?: boolean }): Buffer;
  }
  const cbor: { encode: typeof encode; decodeFirstSync: typeof decodeFirstSync; Encoder: typeof Encoder };
  export default cbor;
}
