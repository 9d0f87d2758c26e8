/**
 * SunSpec devices: the register image (SunSpec Modbus specification: 'SunS' at 40000, models,
 * end marker) built with the project's SunSpec library from the plant state on each read, and
 * writes to RW points (model 123 Conn, WMaxLimPct, WMaxLim_Ena, ...) decoded with the same library.
 */
import { buildImage, decodeModel, getModel, ModelValues, walkImage } from '../../components/modbus-adapter/sunspec';
import { DeviceInfo, DeviceTables, SimDevice } from './device';
import { ModbusException, ModbusExceptionCode } from './modbus-server';
import type { InverterState, MeterState, Plant } from './plant';

export const SUNSPEC_BASE = 40000;

export interface ImageModel {
  id: number;
  values: ModelValues;
  scaleFactors?: Record<string, number>;
}

export type Controls = Record<number, Record<string, number | string>>;

/** Validates a written value (after scale factor); returns a reason to refuse it. */
export type WriteCheck = (modelId: number, point: string, value: number | string | null) => string | undefined;

export class SunSpecDevice extends SimDevice {
  private image: Uint16Array = new Uint16Array(0);

  constructor(
    info: DeviceInfo,
    sync: () => void,
    private readonly models: () => ImageModel[],
    private readonly check: WriteCheck,
    /** Takes the decoded values of a valid write (the RW points it touched, by name); the image must show them. */
    private readonly onWrite: (modelId: number, updates: Record<string, number | string>) => void,
  ) {
    super(info, sync);
  }

  protected tables(): DeviceTables {
    this.image = buildImage(this.models());
    return { holding: [{ start: SUNSPEC_BASE, values: this.image }], input: [], coils: [], discrete: [] };
  }

  protected applyRegisters(address: number, values: number[]): void {
    this.tables();
    const rel = address - SUNSPEC_BASE;
    const end = rel + values.length;
    const model = walkImage(this.image).find((m) => rel >= m.offset + 2 && end <= m.offset + 2 + m.length);
    const def = model && getModel(model.id);
    if (model === undefined || def === undefined) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: ${address}+${values.length} is not inside one model`);
    // Every written register must belong to an RW point of the model's fixed part.
    const first = rel - model.offset - 2;
    const touched: string[] = [];
    let o = 0;
    for (const p of def.group.points) {
      const lo = o;
      o += p.size;
      if (o <= first || lo >= first + values.length) continue;
      if (p.access !== 'RW') throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: model ${model.id} point ${p.name} is read-only`);
      touched.push(p.name);
    }
    if (first + values.length > o) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: write past the fixed part of model ${model.id}`);
    const regs = Array.from(this.image.subarray(model.offset + 2, model.offset + 2 + model.length));
    regs.splice(first, values.length, ...values);
    const decoded = decodeModel(def, regs);
    const updates: Record<string, number | string> = {};
    for (const name of touched) {
      const dp = decoded.points[name];
      const v = dp.value;
      const why = this.check(model.id, name, v);
      if (why !== undefined || v === null) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_VALUE, `${this.info.assetId}: ${name}: ${why ?? 'not-implemented value'}`);
      updates[name] = v;
    }
    this.onWrite(model.id, updates);
  }
}

function round(v: number, digits: number): number {
  const k = 10 ** digits;
  return Math.round(v * k) / k;
}

function common(mn: string, md: string, sn: string, unit: number): ImageModel {
  return { id: 1, values: { points: { Mn: mn, Md: md, Opt: 'dcmms-sim', Vr: '1.0.0', SN: sn, DA: unit } } };
}

/** Seconds since 2000-01-01 UTC (SunSpec timestamps). */
export function sunspecTime(ms: number): number {
  return Math.floor((ms - Date.UTC(2000, 0, 1)) / 1000);
}

/** Inverter: models 1, 103, 120, 123, 160 (one module per MPPT input). */
export function inverterModels(plant: Plant, inv: InverterState, unit: number, assetId: string): ImageModel[] {
  const amps = inv.acW / (3 * inv.vPhase);
  const st = inv.st;
  const moduleC = plant.moduleTempFor(inv);
  const dcA = inv.strings.reduce((n, s) => n + s.a, 0);
  // The inverter measures its inputs behind the combiner box's switches: an open string's input reads 0 V.
  const inputs = inv.strings.filter((s) => s.closed);
  const dcV = inputs.reduce((n, s) => n + s.v, 0) / Math.max(1, inputs.length);
  const groundFault = plant.groundFaulted(inv);
  const evt160 = (open: boolean): string | 0 => [...(groundFault ? ['GROUND_FAULT'] : []), ...(open ? ['DC_DISCONNECT'] : [])].join('|') || 0;
  return [
    common('dCMMS-Sim', 'SIM-INV-60K', assetId, unit),
    {
      id: 103,
      scaleFactors: { A_SF: -1, V_SF: -1, W_SF: 1, Hz_SF: -2, VA_SF: 1, VAr_SF: 1, PF_SF: -1, WH_SF: 0, DCA_SF: -1, DCV_SF: -1, DCW_SF: 1, Tmp_SF: -1 },
      values: {
        points: {
          A: round(amps * 3, 1),
          AphA: round(amps, 1),
          AphB: round(amps, 1),
          AphC: round(amps, 1),
          PPVphAB: round(inv.vPhase * Math.sqrt(3), 1),
          PPVphBC: round(inv.vPhase * Math.sqrt(3), 1),
          PPVphCA: round(inv.vPhase * Math.sqrt(3), 1),
          PhVphA: round(inv.vPhase, 1),
          PhVphB: round(inv.vPhase, 1),
          PhVphC: round(inv.vPhase, 1),
          W: round(inv.acW, -1),
          Hz: round(inv.hz, 2),
          VA: round(inv.acW, -1),
          VAr: 0,
          PF: 100,
          // acc32: 0 means "not accumulated", so a real counter never reports 0 (starts seeded).
          WH: Math.max(1, Math.floor(inv.wh)),
          DCA: round(dcA, 1),
          DCV: round(dcV, 1),
          DCW: round(inv.dcW, -1),
          TmpCab: round(inv.cabinetC, 1),
          TmpSnk: round(inv.heatsinkC, 1),
          St: st,
          StVnd: null,
          Evt1: inv.events.length > 0 ? inv.events.join('|') : 0,
          Evt2: 0,
        },
      },
    },
    {
      id: 120,
      scaleFactors: { WRtg_SF: 1, VARtg_SF: 1, VArRtg_SF: 1, ARtg_SF: -1, PFRtg_SF: -2 },
      values: {
        points: {
          DERTyp: 'PV',
          WRtg: inv.ratedW,
          VARtg: inv.ratedW,
          VArRtgQ1: inv.ratedW * 0.44,
          VArRtgQ2: inv.ratedW * 0.44,
          VArRtgQ3: -inv.ratedW * 0.44,
          VArRtgQ4: -inv.ratedW * 0.44,
          ARtg: round(inv.ratedW / (3 * 230), 1),
          PFRtgQ1: 0.8,
          PFRtgQ2: 0.8,
          PFRtgQ3: -0.8,
          PFRtgQ4: -0.8,
        },
      },
    },
    {
      id: 123,
      scaleFactors: { WMaxLimPct_SF: -1, OutPFSet_SF: -3, VArPct_SF: -1 },
      values: { points: { ...inv.controls.registers } },
    },
    {
      id: 160,
      scaleFactors: { DCA_SF: -2, DCV_SF: -1, DCW_SF: 0, DCWH_SF: 0 },
      values: {
        points: { Evt: evt160(inputs.length < inv.strings.length) },
        groups: {
          module: inv.strings.map((s) => ({
            ID: s.index + 1,
            IDStr: `MPPT${s.index + 1}`,
            DCA: round(s.a, 2),
            DCV: s.closed ? round(s.v, 1) : 0,
            DCW: Math.round(s.w),
            DCWH: Math.max(1, Math.floor(s.wh)),
            Tms: sunspecTime(plant.simMs),
            Tmp: Math.round(moduleC),
            DCSt: s.closed ? st : 'OFF',
            DCEvt: evt160(!s.closed),
          })),
        },
      },
    },
  ];
}

/** Revenue meter: models 1 and 203 (W positive = export to the grid). */
export function meterModels(m: MeterState, unit: number, assetId: string): ImageModel[] {
  const amps = Math.abs(m.w) / (3 * m.vPhase);
  const ll = round(m.vPhase * Math.sqrt(3), 1);
  return [
    common('dCMMS-Sim', 'SIM-METER-3P', assetId, unit),
    {
      id: 203,
      scaleFactors: { A_SF: -1, V_SF: -1, Hz_SF: -2, W_SF: 1, VA_SF: 1, VAR_SF: 1, PF_SF: -1, TotWh_SF: 0 },
      values: {
        points: {
          A: round(amps * 3, 1),
          AphA: round(amps, 1),
          AphB: round(amps, 1),
          AphC: round(amps, 1),
          PhV: round(m.vPhase, 1),
          PhVphA: round(m.vPhase, 1),
          PhVphB: round(m.vPhase, 1),
          PhVphC: round(m.vPhase, 1),
          PPV: ll,
          PhVphAB: ll,
          PhVphBC: ll,
          PhVphCA: ll,
          Hz: round(m.hz, 2),
          W: round(m.w, -1),
          WphA: round(m.w / 3, -1),
          WphB: round(m.w / 3, -1),
          WphC: round(m.w / 3, -1),
          VA: round(Math.abs(m.w), -1),
          VAR: 0,
          PF: 100,
          TotWhExp: Math.max(1, Math.floor(m.whExp)),
          TotWhImp: Math.max(1, Math.floor(m.whImp)),
          Evt: 0,
        },
      },
    },
  ];
}

/** Checks for writes to an inverter: model 123 ranges (SunSpec model 123: WMaxLimPct 0..100 %). */
export const inverterWriteCheck: WriteCheck = (modelId, point, value) => {
  if (typeof value !== 'number') return value === null ? 'not-implemented value' : undefined;
  if (modelId === 123 && point === 'WMaxLimPct' && (value < 0 || value > 100)) return `${value} % is outside 0..100`;
  if (modelId === 123 && (point === 'Conn' || point.endsWith('_Ena')) && value !== 0 && value !== 1) return `${value} is not 0 or 1`;
  if (modelId === 1 && point === 'DA' && (value < 1 || value > 247)) return `${value} is not a unit address 1..247`;
  return undefined;
};
