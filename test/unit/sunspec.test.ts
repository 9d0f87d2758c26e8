/**
 * The SunSpec library: every shipped model round-trips through encodeModel/decodeModel with known
 * values, sentinels decode as not implemented, and a hand-written model 103 block decodes as the
 * SunSpec specification says (independently of encodeModel).
 */
import {
  applyScale,
  buildImage,
  decodeModel,
  encodeModel,
  encodePoint,
  encodeWrite,
  END_MODEL_ID,
  getModel,
  GroupDef,
  ModelDef,
  PointDef,
  pointLocation,
  SunSpecError,
  SUNS_MARKER,
  SUNSPEC_BASES,
  SUPPORTED_MODELS,
  toTree,
  walkImage,
} from '../../components/modbus-adapter/sunspec';

type Values = Record<string, number | string | null>;

const SF_CYCLE = [-2, -1, 0, 1, 2, 3, -3];

function model(id: number): ModelDef {
  const d = getModel(id);
  if (d === undefined) throw new Error(`model ${id} missing`);
  return d;
}

/** A distinct, valid value for a point (after scale factor) and what decoding must give back. */
function sample(p: PointDef, i: number, sf: number | undefined): { given: number | string; expect: number | string } {
  const scaled = (raw: number): { given: number; expect: number } => {
    const v = sf === undefined ? raw : applyScale(raw, sf);
    return { given: v, expect: v };
  };
  switch (p.type) {
    case 'string': {
      const s = `v${p.name}${i}`.slice(0, p.size * 2);
      return { given: s, expect: s };
    }
    case 'ipaddr':
      return { given: `192.168.1.${(i % 250) + 1}`, expect: `192.168.1.${(i % 250) + 1}` };
    case 'ipv6addr':
      return { given: `fe80:0:0:0:0:0:0:${(i + 1).toString(16)}`, expect: `fe80:0:0:0:0:0:0:${(i + 1).toString(16)}` };
    case 'eui48':
      return { given: '00:11:22:33:44:55', expect: '00:11:22:33:44:55' };
    case 'float32':
      return { given: Math.fround(1.5 + i), expect: Math.fround(1.5 + i) };
    case 'float64':
      return { given: 1.25 + i, expect: 1.25 + i };
    case 'enum16':
    case 'enum32': {
      const v = p.symbols && p.symbols.length > 0 ? p.symbols[i % p.symbols.length].value : i + 1;
      return { given: v, expect: v };
    }
    case 'bitfield16':
    case 'bitfield32': {
      const syms = p.symbols ?? [];
      const v = syms.length > 0 ? ((1 << syms[0].value) | (1 << syms[syms.length - 1].value)) >>> 0 : 5;
      return { given: v, expect: v };
    }
    case 'int16':
      return scaled((i % 2 === 0 ? -1 : 1) * (100 + i));
    case 'uint16':
    case 'acc16':
    case 'count':
      return scaled(100 + i);
    case 'int32':
      return scaled(-(70000 + i));
    case 'uint32':
    case 'acc32':
      return scaled(70000 + i);
    case 'int64':
      return scaled(-(2 ** 40 + i));
    case 'uint64':
    case 'acc64':
      return scaled(2 ** 40 + i);
    default:
      throw new Error(`no sample for ${p.type}`);
  }
}

/** Values for every point of a model: top group plus repeating groups (two of each variable one). */
function fullValues(def: ModelDef): { values: { points: Values; groups: Record<string, Values[]> }; sfs: Record<string, number>; expect: Map<string, number | string> } {
  const sfs: Record<string, number> = {};
  let k = 0;
  const collectSfs = (g: GroupDef): void => {
    for (const p of g.points) if (p.type === 'sunssf') sfs[p.name] = SF_CYCLE[k++ % SF_CYCLE.length];
    g.groups.forEach(collectSfs);
  };
  collectSfs(def.group);
  const countPoints = new Set<string>();
  const collectCounts = (g: GroupDef): void => {
    for (const sg of g.groups) {
      if (typeof sg.count === 'string') countPoints.add(sg.count);
      collectCounts(sg);
    }
  };
  collectCounts(def.group);
  const expect = new Map<string, number | string>();
  let i = 0;
  const fill = (g: GroupDef, key: string): Values => {
    const out: Values = {};
    for (const p of g.points) {
      if (p.type === 'pad' || p.type === 'sunssf' || p.type === 'count' || countPoints.has(p.name)) continue;
      const sf = typeof p.sf === 'string' ? sfs[p.sf] : p.sf;
      const s = sample(p, i++, sf);
      out[p.name] = s.given;
      expect.set(`${key}/${p.name}`, s.expect);
    }
    return out;
  };
  const groups: Record<string, Values[]> = {};
  const walk = (g: GroupDef, prefix: string): void => {
    for (const sg of g.groups) {
      const key = prefix === '' ? sg.name : `${prefix}.${sg.name}`;
      const n = typeof sg.count === 'number' && sg.count > 0 ? sg.count : sg.count === undefined ? 1 : 2;
      groups[key] = [];
      for (let j = 0; j < n; j++) {
        groups[key].push(fill(sg, `${key}[${j}]`));
        walk(sg, `${key}[${j}]`);
      }
    }
  };
  const points = fill(def.group, '');
  walk(def.group, '');
  return { values: { points, groups }, sfs, expect };
}

describe('SunSpec model definitions', () => {
  it('ships every model the project needs, with the header stripped', () => {
    const needed = [1, 101, 102, 103, 111, 112, 113, 120, 121, 122, 123, 124, 125, 126, 160, 201, 202, 203, 204];
    for (let id = 701; id <= 715; id++) needed.push(id);
    expect([...SUPPORTED_MODELS]).toEqual(needed);
    for (const id of needed) {
      const d = model(id);
      expect(d.id).toBe(id);
      expect(d.group.points[0].name).not.toBe('ID');
    }
    expect(getModel(64001)).toBeUndefined();
    expect(model(103).name).toBe('inverter_three_phase');
    expect(model(123).group.points.find((p) => p.name === 'WMaxLimPct')).toMatchObject({ access: 'RW', mandatory: true, sf: 'WMaxLimPct_SF' });
  });

  it('exposes the discovery constants', () => {
    expect(SUNSPEC_BASES).toEqual([40000, 0, 50000]);
    expect(SUNS_MARKER).toEqual([0x5375, 0x6e53]);
    expect(END_MODEL_ID).toBe(0xffff);
  });
});

describe('decodeModel(encodeModel(x)) round trips every supported model', () => {
  it.each([...SUPPORTED_MODELS])('model %i', (id) => {
    const def = model(id);
    const { values, sfs, expect: want } = fullValues(def);
    const regs = encodeModel(def, values, { scaleFactors: sfs });
    const dec = decodeModel(def, regs);
    expect(dec.length).toBe(regs.length);
    expect(want.size).toBeGreaterThan(0);
    for (const [path, v] of want) {
      const slash = path.lastIndexOf('/');
      const where = path.slice(0, slash);
      const name = path.slice(slash + 1);
      let pts = dec.points;
      if (where !== '') {
        const m = /^(.*)\[(\d+)\]$/.exec(where) as RegExpExecArray;
        pts = dec.groups[m[1]][Number(m[2])];
      }
      expect({ path, value: pts[name].value, implemented: pts[name].implemented }).toEqual({ path, value: v, implemented: true });
    }
    for (const [name, sf] of Object.entries(sfs)) {
      if (dec.points[name]) expect(dec.points[name].value).toBe(sf);
    }
  });
});

describe('not-implemented values', () => {
  it.each([...SUPPORTED_MODELS])('model %i with nothing given decodes every point as not implemented', (id) => {
    const def = model(id);
    const dec = decodeModel(def, encodeModel(def, {}));
    for (const p of def.group.points) {
      if (p.type === 'pad' || p.type === 'sunssf' || p.type === 'count' || !(p.name in dec.points)) continue;
      const counted = (g: GroupDef): boolean => g.groups.some((sg) => sg.count === p.name || counted(sg));
      if (counted(def.group)) continue;
      expect({ name: p.name, value: dec.points[p.name].value, implemented: dec.points[p.name].implemented }).toEqual({ name: p.name, value: null, implemented: false });
    }
  });

  it('uses the SunSpec sentinel of each type', () => {
    const def = model(103);
    const regs = encodeModel(def, { points: { A_SF: null } });
    expect(regs[0]).toBe(0xffff); // A uint16
    expect(regs[4]).toBe(0x8000); // A_SF sunssf (explicit null)
    expect(regs[12]).toBe(0x8000); // W int16
    expect([regs[22], regs[23]]).toEqual([0, 0]); // WH acc32: 0 = not accumulated
    expect([regs[38], regs[39]]).toEqual([0xffff, 0xffff]); // Evt1 bitfield32
    expect(regs[36]).toBe(0xffff); // St enum16
    const f = encodeModel(model(113), {});
    expect([f[0], f[1]]).toEqual([0x7fc0, 0]); // float32 NaN
    const c = encodeModel(model(1), {});
    expect(Array.from(c.slice(0, 16))).toEqual(new Array(16).fill(0)); // string: all NUL
    expect(c[c.length - 1]).toBe(0x8000); // Pad
  });

  it('a value whose scale factor is not implemented decodes as null, flagged', () => {
    const def = model(103);
    const regs = encodeModel(def, { points: { A: 5 } });
    regs[4] = 0x8000; // A_SF not implemented
    const dec = decodeModel(def, regs);
    expect(dec.points.A).toMatchObject({ value: null, raw: 5, implemented: true, badScaleFactor: true });
    regs[4] = 11; // outside -10..10
    expect(decodeModel(def, regs).points.A.badScaleFactor).toBe(true);
  });
});

/** Model 103 written register by register from the SunSpec model 103 point list, not by encodeModel. */
describe('model 103 from hand-written registers', () => {
  const regs = new Array<number>(50).fill(0);
  [0, 1, 2, 3].forEach((o) => (regs[o] = 0xffff)); // A, AphA..C: not implemented first
  regs[0] = 100; // A = 100 x 10^-2 = 1.00 A
  regs[4] = 0xfffe; // A_SF = -2
  regs[8] = 2301; // PhVphA
  regs[11] = 0xffff; // V_SF = -1 -> 230.1 V
  regs[12] = 0xfc18; // W = -1000 x 10^1
  regs[13] = 1; // W_SF
  regs[14] = 5002; // Hz
  regs[15] = 0xfffe; // Hz_SF -> 50.02 Hz
  regs[16] = 0x8000; // VA: int16 not implemented
  regs[20] = 95; // PF, but PF_SF (21) below is not implemented
  regs[21] = 0x8000;
  regs[22] = 0x0001; // WH = 0x000186A0 = 100000 (high word first)
  regs[23] = 0x86a0;
  regs[24] = 3; // WH_SF -> 1e8 Wh
  regs[31] = 456; // TmpCab
  regs[35] = 0xffff; // Tmp_SF = -1 -> 45.6 C
  regs[36] = 4; // St = MPPT
  regs[37] = 0xffff; // StVnd not implemented
  regs[38] = 0x8000; // Evt1 = bit 31 (unnamed) ...
  regs[39] = 0x0081; // ... + GROUND_FAULT (0) + OVER_TEMP (7)
  [40, 41, 42, 43, 44, 45, 46, 47, 48, 49].forEach((o) => (regs[o] = 0xffff));
  const dec = decodeModel(model(103), regs);

  it('applies scale factors, including negative ones', () => {
    expect(dec.points.A).toMatchObject({ value: 1, raw: 100, units: 'A', sf: -2 });
    expect(dec.points.PhVphA.value).toBe(230.1);
    expect(dec.points.W.value).toBe(-10000);
    expect(dec.points.Hz.value).toBe(50.02);
    expect(dec.points.WH).toMatchObject({ value: 1e8, raw: 100000, units: 'Wh' });
    expect(dec.points.TmpCab.value).toBe(45.6);
  });
  it('reports sentinels as not implemented', () => {
    expect(dec.points.AphA).toMatchObject({ value: null, implemented: false });
    expect(dec.points.VA).toMatchObject({ value: null, implemented: false, raw: -32768 });
    expect(dec.points.StVnd.implemented).toBe(false);
    expect(dec.points.Evt2.implemented).toBe(false);
    expect(dec.points.PF).toMatchObject({ value: null, implemented: true, badScaleFactor: true });
  });
  it('names enums and bits', () => {
    expect(dec.points.St).toMatchObject({ value: 4, symbol: 'MPPT' });
    expect(dec.points.Evt1.bits).toEqual(['GROUND_FAULT', 'OVER_TEMP', 'BIT31']);
    expect(dec.points.Evt1.value).toBe(0x80000081);
  });
  it('encodeModel produces the same registers for the same values', () => {
    const again = encodeModel(model(103), {
      points: { A: 1, PhVphA: 230.1, W: -10000, Hz: 50.02, WH: 1e8, TmpCab: 45.6, St: 'MPPT', Evt1: 0x80000081, PF: 95 },
    }, { scaleFactors: { A_SF: -2, V_SF: -1, W_SF: 1, Hz_SF: -2, WH_SF: 3, Tmp_SF: -1 } });
    for (const o of [0, 4, 8, 11, 12, 13, 14, 15, 22, 23, 24, 31, 35, 36, 38, 39]) expect({ o, r: again[o] }).toEqual({ o, r: regs[o] });
  });
});

describe('repeating groups', () => {
  const modules = [1, 2, 3, 4].map((i) => ({ ID: i, IDStr: `MPPT${i}`, DCA: 8.25 + i, DCV: 612.5, DCW: 5000 + i, DCWH: 1000 * i, Tmp: 41, DCSt: 'MPPT' as const, DCEvt: i === 3 ? 'GROUND_FAULT' : 0 }));

  it('model 160 with four modules: length, N and every module', () => {
    const def = model(160);
    const regs = encodeModel(def, { groups: { module: modules } }, { scaleFactors: { DCA_SF: -2, DCV_SF: -1, DCW_SF: 0, DCWH_SF: 1 } });
    expect(regs.length).toBe(8 + 4 * 20);
    const dec = decodeModel(def, regs);
    expect(dec.points.N.value).toBe(4);
    expect(dec.groups.module).toHaveLength(4);
    dec.groups.module.forEach((m, i) => {
      expect(m.ID.value).toBe(i + 1);
      expect(m.IDStr.value).toBe(`MPPT${i + 1}`);
      expect(m.DCA.value).toBe(9.25 + i);
      expect(m.DCV.value).toBe(612.5);
      expect(m.DCWH.value).toBe(1000 * (i + 1));
      expect(m.DCSt.symbol).toBe('MPPT');
      expect(m.Tms.implemented).toBe(false);
    });
    expect(dec.groups.module[2].DCEvt.bits).toEqual(['GROUND_FAULT']);
    expect(dec.groups.module[1].DCEvt.bits).toEqual([]);
    const tree = toTree(dec);
    expect(Array.isArray(tree.module)).toBe(true);
    expect((tree.module as Record<string, unknown>[])[3]).not.toHaveProperty('Tms');
  });

  it('nested counted groups (model 705 curves of points) decode under their paths', () => {
    const def = model(705);
    const regs = encodeModel(def, { points: { NPt: 3 }, groups: { Crv: [{ ActPt: 3 }, { ActPt: 2 }], 'Crv[1].Pt': [{ V: 92 }, { V: 100 }, { V: 108 }] } }, { scaleFactors: { V_SF: 0 } });
    const dec = decodeModel(def, regs);
    expect(dec.groups.Crv).toHaveLength(2);
    expect(dec.groups['Crv[0].Pt']).toHaveLength(3);
    expect(dec.groups['Crv[1].Pt'].map((p) => p.V.value)).toEqual([92, 100, 108]);
    const tree = toTree(dec);
    const crv = tree.Crv as Record<string, unknown>[];
    expect((crv[1].Pt as Record<string, { value: unknown }>[])[2].V.value).toBe(108);
  });

  it('throws when the model is shorter than its fixed part, or a count runs past the length', () => {
    const err = (f: () => unknown): SunSpecError => {
      try {
        f();
      } catch (e) {
        return e as SunSpecError;
      }
      throw new Error('did not throw');
    };
    expect(err(() => decodeModel(model(103), new Array(49).fill(0))).code).toBe('MODEL_TOO_SHORT');
    const def = model(714);
    const regs = Array.from(encodeModel(def, { groups: { Prt: [{}, {}] } }));
    expect(decodeModel(def, regs).groups.Prt).toHaveLength(2);
    const nprt = pointLocation(def, 'NPrt');
    expect(nprt?.offset).toBe(2); // after PrtAlrms (bitfield32)
    regs[nprt?.offset ?? 0] = 3; // NPrt says three, the length holds two
    const e = err(() => decodeModel(def, regs));
    expect(e).toBeInstanceOf(SunSpecError);
    expect(e.code).toBe('GROUP_OVERRUN');
  });
});

describe('buildImage / walkImage', () => {
  it("starts with 'SunS', chains models and ends with 0xFFFF 0", () => {
    const img = buildImage([
      { id: 1, values: { points: { Mn: 'dCMMS', Md: 'SIM-INV', SN: 'INV-01' } } },
      { id: 103, values: { points: { W: 5000 } } },
      { id: 160, values: { groups: { module: [{ DCA: 1 }, { DCA: 2 }] } } },
    ]);
    expect([img[0], img[1]]).toEqual([0x5375, 0x6e53]);
    expect([img[2], img[3]]).toEqual([1, 66]);
    expect([img[img.length - 2], img[img.length - 1]]).toEqual([0xffff, 0]);
    const chain = walkImage(img);
    expect(chain.map((m) => [m.id, m.length])).toEqual([[1, 66], [103, 50], [160, 48]]);
    const c = decodeModel(model(1), img.subarray(chain[0].offset + 2, chain[0].offset + 2 + chain[0].length));
    expect(c.points.Mn.value).toBe('dCMMS');
    expect(c.points.SN.value).toBe('INV-01');
    expect(() => buildImage([{ id: 64001, values: {} }])).toThrow(SunSpecError);
  });
});

describe('writes: pointLocation, encodePoint, encodeWrite', () => {
  const code = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      if (e instanceof SunSpecError) return e.code;
      throw e;
    }
    return 'no error';
  };

  it('locates the model 123 and 704 control points after the header', () => {
    const m123 = model(123);
    expect(pointLocation(m123, 'Conn')).toMatchObject({ offset: 2, size: 1 });
    expect(pointLocation(m123, 'WMaxLimPct')).toMatchObject({ offset: 3, size: 1, point: { sf: 'WMaxLimPct_SF', access: 'RW' } });
    expect(pointLocation(m123, 'WMaxLim_Ena')).toMatchObject({ offset: 7, size: 1 });
    expect(pointLocation(m123, 'WMaxLimPct_SF')).toMatchObject({ offset: 21 });
    const m704 = model(704);
    expect(pointLocation(m704, 'WMaxLimPctEna')).toMatchObject({ offset: 12 });
    expect(pointLocation(m704, 'WMaxLimPct')).toMatchObject({ offset: 13, point: { type: 'uint16' } });
    expect(pointLocation(m704, 'WSet')).toMatchObject({ size: 2, point: { type: 'int32' } });
    expect(pointLocation(m123, 'Nope')).toBeUndefined();
  });

  it('encodes values after scale factor and agrees with decodeModel', () => {
    const def = model(123);
    const w = encodeWrite(def, 'WMaxLimPct', 55.5, -1);
    expect(w).toMatchObject({ offset: 3, registers: [555] });
    const regs = encodeModel(def, {}, { scaleFactors: { WMaxLimPct_SF: -1 } });
    regs.set(w.registers, w.offset);
    regs.set(encodeWrite(def, 'Conn', 'DISCONNECT').registers, 2);
    regs.set(encodeWrite(def, 'WMaxLim_Ena', 1).registers, 7);
    const dec = decodeModel(def, regs);
    expect(dec.points.WMaxLimPct.value).toBe(55.5);
    expect(dec.points.Conn).toMatchObject({ value: 0, symbol: 'DISCONNECT' });
    expect(dec.points.WMaxLim_Ena.symbol).toBe('ENABLED');
    const p = (name: string, m = def): PointDef => pointLocation(m, name)?.point as PointDef;
    expect(encodePoint(p('WSet', model(704)), -250000, 1)).toEqual([0xffff, 0xffff - 25000 + 1]);
    expect(encodePoint(p('Evt1', model(103)), 'GROUND_FAULT|OVER_TEMP')).toEqual([0, 0x81]);
    expect(encodePoint(p('Mn', model(1)), 'AB')).toEqual([0x4142, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('refuses what cannot be written, with a reason', () => {
    const def = model(123);
    const pct = pointLocation(def, 'WMaxLimPct')?.point as PointDef;
    expect(code(() => encodePoint(pct, -1, 0))).toBe('VALUE_OUT_OF_RANGE'); // uint16 below 0
    expect(code(() => encodePoint(pct, 655.35, -2))).toBe('VALUE_OUT_OF_RANGE'); // raw 65535 is the sentinel
    expect(code(() => encodePoint(pct, 70000, 0))).toBe('VALUE_OUT_OF_RANGE');
    expect(code(() => encodePoint(pct, Number.NaN, 0))).toBe('VALUE_INVALID');
    expect(code(() => encodePoint(pct, 50, 11))).toBe('BAD_SCALE_FACTOR');
    const conn = pointLocation(def, 'Conn')?.point as PointDef;
    expect(code(() => encodePoint(conn, 5))).toBe('VALUE_INVALID'); // not a symbol of Conn
    expect(code(() => encodePoint(conn, 'MAYBE'))).toBe('VALUE_INVALID');
    const w = pointLocation(model(103), 'W')?.point as PointDef;
    expect(code(() => encodePoint(w, -32768))).toBe('VALUE_OUT_OF_RANGE'); // int16 sentinel
    expect(encodePoint(w, -32767)).toEqual([0x8001]);
    expect(code(() => encodePoint(pointLocation(model(1), 'Mn')?.point as PointDef, 'x'.repeat(33)))).toBe('VALUE_OUT_OF_RANGE');
    expect(code(() => encodeWrite(model(103), 'W', 100))).toBe('NOT_WRITABLE');
    expect(code(() => encodeWrite(def, 'Nope', 1))).toBe('UNKNOWN_POINT');
  });
});
