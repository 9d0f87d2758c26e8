/** Block planner and register-map decoding/encoding, table-driven. */
import { planBlocks, splitSpan, PlanError, type Range } from '../../components/modbus-adapter/planner';
import { decodeMapPoint, encodeMapPoint, RegisterValueError } from '../../components/modbus-adapter/register-map';
import type { MapPoint } from '../../components/modbus-adapter/config';

const r = (fc: 1 | 2 | 3 | 4, address: number, width: number, ref = `${fc}:${address}`): Range<string> => ({ fc, address, width, ref });
const shape = (b: ReturnType<typeof planBlocks<string>>): string[] => b.map((x) => `${x.fc}:${x.address}+${x.count}`);

describe('planBlocks', () => {
  test.each<[string, Range<string>[], Parameters<typeof planBlocks>[1], string[]]>([
    ['adjacent ranges merge', [r(3, 0, 2), r(3, 2, 1), r(3, 3, 2)], {}, ['3:0+5']],
    ['a gap is not bridged by default', [r(3, 0, 1), r(3, 2, 1)], {}, ['3:0+1', '3:2+1']],
    ['a gap within maxGap is bridged', [r(3, 0, 1), r(3, 3, 1)], { maxGap: 2 }, ['3:0+4']],
    ['a gap beyond maxGap is not', [r(3, 0, 1), r(3, 4, 1)], { maxGap: 2 }, ['3:0+1', '3:4+1']],
    ['function codes never mix', [r(3, 0, 1), r(4, 1, 1), r(1, 0, 1), r(2, 1, 1)], {}, ['1:0+1', '2:1+1', '3:0+1', '4:1+1']],
    ['125 registers at most', [r(3, 0, 100), r(3, 100, 30)], {}, ['3:0+100', '3:100+30']],
    ['exactly 125 fits', [r(3, 0, 100), r(3, 100, 25)], {}, ['3:0+125']],
    ['per-device limit', [r(3, 0, 10), r(3, 10, 10), r(3, 20, 10)], { maxRegisters: 20 }, ['3:0+20', '3:20+10']],
    ['overlapping ranges share a block', [r(3, 10, 2), r(3, 11, 1), r(3, 0, 11)], {}, ['3:0+12']],
    ['unsorted input is sorted', [r(3, 50, 1), r(3, 10, 1), r(3, 11, 1)], {}, ['3:10+2', '3:50+1']],
    ['bits merge up to 2000', [r(1, 0, 1500), r(1, 1500, 600)], {}, ['1:0+1500', '1:1500+600']],
    ['the top of the address space', [r(3, 65534, 2)], {}, ['3:65534+2']],
  ])('%s', (_name, ranges, opts, expected) => {
    const blocks = planBlocks(ranges, opts);
    expect(shape(blocks)).toEqual(expected);
    // Every range is read by exactly one block that covers it.
    for (const x of ranges) {
      const covering = blocks.filter((b) => b.ranges.includes(x));
      expect(covering).toHaveLength(1);
      expect(covering[0]!.address <= x.address && x.address + x.width <= covering[0]!.address + covering[0]!.count).toBe(true);
    }
  });

  test.each([
    ['past 65535', [r(3, 65535, 2)]],
    ['wider than a read', [r(3, 0, 126)]],
    ['negative', [r(3, -1, 1)]],
  ])('refuses a range %s', (_n, ranges) => {
    expect(() => planBlocks(ranges)).toThrow(PlanError);
  });

  test('splitSpan cuts a model into reads of at most max', () => {
    expect(splitSpan(40002, 300, 125)).toEqual([{ address: 40002, count: 125 }, { address: 40127, count: 125 }, { address: 40252, count: 50 }]);
    expect(splitSpan(0, 10, 4)).toEqual([{ address: 0, count: 4 }, { address: 4, count: 4 }, { address: 8, count: 2 }]);
  });
});

const p = (x: Partial<MapPoint>): MapPoint => ({ name: 'x', address: 0, functionCode: 3, type: 'uint16', ...x });

describe('register map decoding', () => {
  test.each<[string, Partial<MapPoint>, number[], unknown]>([
    ['uint16', {}, [65535], 65535],
    ['int16 negative', { type: 'int16' }, [0xfff6], -10],
    ['uint16 scale + offset', { scale: 0.1, offset: -40 }, [650], 25],
    ['scale without float noise', { scale: 0.1 }, [2345], 234.5],
    ['int32 big word order', { type: 'int32' }, [0xffff, 0xfffe], -2],
    ['int32 little word order', { type: 'int32', wordOrder: 'little' }, [0xfffe, 0xffff], -2],
    ['uint32 big', { type: 'uint32' }, [0x0001, 0x0002], 65538],
    ['uint32 little', { type: 'uint32', wordOrder: 'little' }, [0x0002, 0x0001], 65538],
    ['float32 big', { type: 'float32' }, [0x4148, 0x0000], 12.5],
    ['float32 little', { type: 'float32', wordOrder: 'little' }, [0x0000, 0x4148], 12.5],
    ['string, NUL padded', { type: 'string', length: 3 }, [0x4142, 0x4300, 0x0000], 'ABC'],
    ['bitfield as names', { type: 'bitfield', bits: ['RUN', 'FAULT', 'ALARM'] }, [0b101], 'RUN|ALARM'],
    ['bitfield unnamed bits', { type: 'bitfield', bits: ['RUN'] }, [0b1000000000000001], 'RUN|BIT15'],
    ['bitfield none set', { type: 'bitfield' }, [0], ''],
  ])('%s', (_n, point, regs, v) => {
    expect(decodeMapPoint(p(point), regs, 0).v).toEqual(v);
  });

  test('float32 NaN is a bad value, not a number', () => {
    expect(decodeMapPoint(p({ type: 'float32', unit: 'W' }), [0x7fc0, 0], 0)).toEqual({ v: null, u: 'W', q: 'bad' });
  });

  test.each<[string, Partial<MapPoint>, number | string, number[]]>([
    ['uint16 with scale', { scale: 0.1 }, 23.4, [234]],
    ['int16 negative', { type: 'int16' }, -2, [0xfffe]],
    ['int32 little', { type: 'int32', wordOrder: 'little' }, -2, [0xfffe, 0xffff]],
    ['uint32 big', { type: 'uint32' }, 65538, [1, 2]],
    ['float32', { type: 'float32' }, 12.5, [0x4148, 0]],
    ['string', { type: 'string', length: 2 }, 'AB', [0x4142, 0]],
  ])('encodes %s (round trip)', (_n, point, value, regs) => {
    expect(encodeMapPoint(p(point), value)).toEqual(regs);
    expect(decodeMapPoint(p(point), regs, 0).v).toEqual(value);
  });

  test.each<[string, Partial<MapPoint>, number]>([
    ['above max', { max: 100 }, 101],
    ['below min', { min: 0, type: 'int16' }, -1],
    ['int16 overflow', { type: 'int16' }, 40000],
    ['uint16 negative', {}, -1],
    ['scaled past the type', { scale: 0.1 }, 7000],
  ])('refuses %s', (_n, point, value) => {
    expect(() => encodeMapPoint(p(point), value)).toThrow(RegisterValueError);
  });
});
