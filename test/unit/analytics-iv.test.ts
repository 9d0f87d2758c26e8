/**
 * components/analytics/iv.ts: the single-diode model (Lambert W solution, De Soto translation,
 * the datasheet fit) and the analysis of a curve. Curves from the model with known parameters,
 * quantised as the simulator's registers carry them (0.1 V, 0.01 A, 100 points), must give the
 * parameters back within the tolerances stated here (and in docs/analytics-iv.md).
 */
import {
  analyzeIvCurve,
  atConditions,
  currentAt,
  fitModule,
  ivFeatures,
  IvCurveError,
  lambertWExp,
  maxPowerPoint,
  stringCurve,
  uniformString,
  voltageAt,
  type IvCurve,
  type IvStringConfig,
  type ModuleDatasheet,
  type SingleDiode,
  type StringCircuit,
} from '../../components/analytics/iv';

/** Tolerances of the figures recovered from a 100-point curve at 0.1 V / 0.01 A resolution. */
const TOL = { isc: 0.003, voc: 0.003, pmp: 0.005, vmp: 0.02, imp: 0.02, fillFactor: 0.005, rs: 0.1, rsh: 0.15 };

const DS: ModuleDatasheet = { iscA: 10.36, vocV: 49.2, impA: 9.69, vmpV: 41.3, cellsInSeries: 72, alphaIscPctPerK: 0.05, betaVocPctPerK: -0.29, bypassDiodes: 3 };
const CFG: IvStringConfig = { module: DS, layout: { modulesInSeries: 15, stringsInParallel: 3 } };

const quantise = (c: IvCurve): IvCurve => ({ v: c.v.map((x) => Math.round(x * 10) / 10), i: c.i.map((x) => Math.round(x * 100) / 100) });
const whole = (p: SingleDiode): StringCircuit => ({ groups: [{ params: p, count: 1 }] });

describe('single-diode model', () => {
  test('W(e^x) solves w + ln w = x from deep negative to string-sized arguments', () => {
    for (const x of [-50, -20, -5, -1, 0, 0.5, 1, 3, 10, 100, 2400, 1e5]) {
      const w = lambertWExp(x);
      expect(w).toBeGreaterThan(0);
      if (x > -40) expect(Math.abs(w + Math.log(w) - x)).toBeLessThan(1e-12 * Math.max(1, Math.abs(x)));
    }
    expect(lambertWExp(0)).toBeCloseTo(0.5671432904097838, 15); // the omega constant
  });

  test('I(V) and V(I) are the same curve and satisfy the implicit equation', () => {
    const p: SingleDiode = { il: 31, i0: 1e-9, rs: 1.2, rsh: 900, a: 29 };
    for (const v of [0, 100, 400, 600, 650, 690]) {
      const i = currentAt(p, v);
      expect(voltageAt(p, i)).toBeCloseTo(v, 6);
      const residual = p.il - p.i0 * (Math.exp((v + i * p.rs) / p.a) - 1) - (v + i * p.rs) / p.rsh - i;
      expect(Math.abs(residual)).toBeLessThan(1e-9);
    }
    expect(currentAt(p, voltageAt(p, 0))).toBeCloseTo(0, 9);
  });

  test('the datasheet fit reproduces Isc, Voc, the maximum-power point and beta Voc; a datasheet made from known parameters gives them back', () => {
    const ref = fitModule(DS);
    const stc = atConditions(ref, 1000, 25);
    expect(currentAt(stc, 0)).toBeCloseTo(DS.iscA, 6);
    expect(voltageAt(stc, 0)).toBeCloseTo(DS.vocV, 6);
    const mpp = maxPowerPoint(stc);
    expect(mpp.v).toBeCloseTo(DS.vmpV, 3);
    expect(mpp.i).toBeCloseTo(DS.impA, 3);
    const beta = (voltageAt(atConditions(ref, 1000, 35), 0) - voltageAt(atConditions(ref, 1000, 15), 0)) / 20 / DS.vocV * 100;
    expect(beta).toBeCloseTo(DS.betaVocPctPerK!, 2);

    const known = { il: 9.2, i0: 2e-10, rs: 0.35, rsh: 420, a: 1.3 * 60 * 0.025693 , alphaIsc: 0.0046 };
    const m = maxPowerPoint(known);
    const made: ModuleDatasheet = { iscA: currentAt(known, 0), vocV: voltageAt(known, 0), impA: m.i, vmpV: m.v, cellsInSeries: 60, alphaIscPctPerK: (0.0046 / currentAt(known, 0)) * 100, idealityFactor: 1.3 };
    const back = fitModule(made);
    expect(back.rs / known.rs).toBeCloseTo(1, 3);
    expect(back.rsh / known.rsh).toBeCloseTo(1, 2);
    expect(back.i0 / known.i0).toBeCloseTo(1, 2);
    expect(back.il / known.il).toBeCloseTo(1, 4);
  });

  test('a datasheet no single-diode circuit fits is refused by name', () => {
    expect(() => fitModule({ ...DS, vmpV: 48.9, impA: 10.3, betaVocPctPerK: undefined })).toThrow(/no single-diode fit/);
  });
});

describe('figures from a curve', () => {
  const cases: [string, SingleDiode][] = [
    ['typical string', { il: 31.5, i0: 1e-9, rs: 1.1, rsh: 900, a: 29 }],
    ['high series resistance', { il: 31.5, i0: 1e-9, rs: 5.5, rsh: 900, a: 29 }],
    ['low shunt resistance', { il: 31.5, i0: 1e-9, rs: 1.1, rsh: 60, a: 29 }],
    ['low light, hot', { il: 9.5, i0: 2e-8, rs: 1.1, rsh: 3000, a: 32 }],
    ['single module', { il: 10.3, i0: 2.4e-11, rs: 0.25, rsh: 300, a: 1.84 }],
  ];
  test.each(cases)('%s: Isc, Voc, Pmp, Vmp, Imp, fill factor, Rs and Rsh within the stated tolerances', (_name, p) => {
    const c = quantise(stringCurve(whole(p), 100));
    const f = ivFeatures(c, { a: p.a });
    const mpp = maxPowerPoint(p);
    const isc = currentAt(p, 0);
    const voc = voltageAt(p, 0);
    const rel = (x: number, y: number): number => Math.abs(x / y - 1);
    expect(rel(f.iscA, isc)).toBeLessThan(TOL.isc);
    expect(rel(f.vocV, voc)).toBeLessThan(TOL.voc);
    expect(rel(f.pmpW, mpp.p)).toBeLessThan(TOL.pmp);
    expect(rel(f.vmpV, mpp.v)).toBeLessThan(TOL.vmp);
    expect(rel(f.impA, mpp.i)).toBeLessThan(TOL.imp);
    expect(rel(f.fillFactor, mpp.p / (isc * voc))).toBeLessThan(TOL.fillFactor);
    expect(rel(f.rsOhm!, p.rs)).toBeLessThan(TOL.rs);
    expect(rel(f.rshOhm, p.rsh)).toBeLessThan(TOL.rsh);
    expect(f.steps).toBe(0);
    // The raw slope near Voc includes the diode: larger than Rs.
    expect(f.rocOhm).toBeGreaterThan(p.rs);
    // Without the diode's a, no Rs; the order of the points does not matter.
    expect(ivFeatures({ v: [...c.v].reverse(), i: [...c.i].reverse() }).rsOhm).toBeNull();
  });

  test('a partly shaded string (bypass diodes) has a knee; refused input is an IvCurveError', () => {
    const p: SingleDiode = { il: 31.5 / 1, i0: 1e-9 / 1, rs: 1.1, rsh: 900, a: 29 };
    const sub = (x: SingleDiode, k: number, light = 1): SingleDiode => ({ il: x.il * light, i0: x.i0, rs: x.rs / k, rsh: x.rsh / k, a: x.a / k });
    const shaded: StringCircuit = { groups: [{ params: sub(p, 45), count: 30 }, { params: sub(p, 45, 0.4), count: 15 }], bypassV: 0.5 };
    expect(ivFeatures(quantise(stringCurve(shaded, 100))).steps).toBe(1);
    expect(() => ivFeatures({ v: [0, 1], i: [1, 0] })).toThrow(IvCurveError);
    expect(() => ivFeatures({ v: new Array(20).fill(0).map((_x, k) => k), i: new Array(20).fill(Number.NaN) })).toThrow(/finite/);
    expect(() => ivFeatures({ v: new Array(20).fill(0).map((_x, k) => k), i: new Array(20).fill(0) })).toThrow(/no current/);
    expect(() => analyzeIvCurve(quantise(stringCurve(whole(p), 100)), CFG, { irradiance: 0, temperature: 25 })).toThrow(/irradiance/);
  });
});

describe('classification against the expected string (datasheet model at the measured conditions)', () => {
  const G = 850;
  const T = 45;
  const healthy = (): StringCircuit => uniformString(fitModule(DS), CFG.layout, 3, G, T);
  const scale = (c: StringCircuit, f: (p: SingleDiode) => SingleDiode): StringCircuit => ({ ...c, groups: c.groups.map((g) => ({ ...g, params: f(g.params) })) });
  const run = (c: StringCircuit, g = G): ReturnType<typeof analyzeIvCurve> => analyzeIvCurve(quantise(stringCurve(c, 100)), CFG, { irradiance: g, temperature: T });

  test('normal, soiling, degradation, high Rs, low Rsh, mismatch', () => {
    const n = run(healthy());
    expect(n.classification).toBe('normal');
    expect(n.ratios.pmp).toBeCloseTo(1, 2);
    expect(n.ratios.isc).toBeCloseTo(1, 2);
    // Soiling: the cells see 80 % of what the clean reference cell measured.
    expect(run(uniformString(fitModule(DS), CFG.layout, 3, 0.8 * G, T)).classification).toBe('soiling');
    expect(run(scale(healthy(), (p) => ({ ...p, il: 0.85 * p.il, i0: p.i0 * Math.exp(0.06 * 49.2 / 1.84) }))).classification).toBe('degradation');
    const rs = run(scale(healthy(), (p) => ({ ...p, rs: 4 * p.rs })));
    expect(rs.classification).toBe('high_series_resistance');
    expect(rs.ratios.rs).toBeCloseTo(4, 0);
    const rsh = run(scale(healthy(), (p) => ({ ...p, rsh: 0.05 * p.rsh })));
    expect(rsh.classification).toBe('low_shunt_resistance');
    expect(rsh.reasons[0]).toMatch(/shunt resistance .* of the expected/);
    const c = healthy();
    const g = c.groups[0];
    const shaded: StringCircuit = { ...c, groups: [{ params: g.params, count: 30 }, { params: { ...g.params, il: 0.3 * g.params.il }, count: 15 }] };
    expect(run(shaded).classification).toBe('mismatch');
    // The analysis trusts the irradiance it is given: a reference cell reading 20 % high makes a clean string look soiled.
    expect(run(healthy(), 1.2 * G).classification).toBe('soiling');
  });
});
