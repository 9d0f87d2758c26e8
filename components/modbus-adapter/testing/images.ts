/** SunSpec register images for the ModbusAdapter tests, built from the model definitions. */
import { buildImage } from '../sunspec';

/** Model 160 with three MPPT modules (the third nearly dark), as both images carry it. */
const MPPT_MODULES = {
  id: 160,
  values: {
    points: { TmsPer: 0 },
    groups: {
      module: [
        { ID: 1, IDStr: 'MPPT1', DCA: 8.5, DCV: 610.2, DCW: 5187 },
        { ID: 2, IDStr: 'MPPT2', DCA: 8.1, DCV: 605.9, DCW: 4908 },
        { ID: 3, IDStr: 'MPPT3', DCA: 0.2, DCV: 590.0, DCW: 118 },
      ],
    },
  },
  scaleFactors: { DCA_SF: -1, DCV_SF: -1, DCW_SF: 0, DCWH_SF: 0 },
};

/** An inverter: models 1, 103, 120, 123 and 160 with three MPPT modules. */
export function inverterImage(opts: { wSf?: number } = {}): Uint16Array {
  return buildImage([
    { id: 1, values: { points: { Mn: 'dCMMS', Md: 'SimInverter', SN: 'INV-0001', Vr: '1.0', DA: 1 } } },
    {
      id: 103,
      values: { points: { A: 41.5, AphA: 13.8, AphB: 13.9, AphC: 13.8, PhVphA: 230.1, W: 9560, Hz: 50.01, WH: 123456, TmpCab: 41.2, St: 'MPPT', Evt1: 'GROUND_FAULT|OVER_TEMP' } },
      scaleFactors: { A_SF: -1, V_SF: -1, W_SF: opts.wSf ?? 0, Hz_SF: -2, WH_SF: 0, Tmp_SF: -1 },
    },
    { id: 120, values: { points: { DERTyp: 'PV', WRtg: 10000, VARtg: 10000 } }, scaleFactors: { WRtg_SF: 0, VARtg_SF: 0 } },
    { id: 123, values: { points: { Conn: 'CONNECT', WMaxLimPct: 100, WMaxLim_Ena: 'DISABLED' } }, scaleFactors: { WMaxLimPct_SF: -1 } },
    MPPT_MODULES,
  ]);
}

/**
 * An inverter with controls in repeating groups, for the write-permission tests: models 1, 103,
 * 123 (immediate controls), 160 (three read-only MPPT modules), 126 (volt-var, one curve in a
 * count-0 group, with a read-only `ReadOnly` point at the end of the curve), 704 (DER AC controls:
 * 32-bit RW points such as WSet) and 705 (DER volt-var: NCrv = 2 curves of NPt = 3 points, a 32-bit
 * RW `RspTms` and read-only `VRefAuto` / `ReadOnly` in each curve).
 */
export function controlsImage(): Uint16Array {
  const curve = (n: number): Record<string, number> => ({ ActPt: 3, DeptRef: 1, Pri: 1, VRef: 230 + n, VRefAuto: 231, VRefAutoEna: 0, VRefAutoTms: 60, RspTms: 10 + n, ReadOnly: 0 });
  const points = (n: number): Array<Record<string, number>> => [
    { V: 92 + n, Var: 30 },
    { V: 100, Var: 0 },
    { V: 108 - n, Var: -30 },
  ];
  return buildImage([
    { id: 1, values: { points: { Mn: 'dCMMS', Md: 'SimInverterCtl', SN: 'INV-0002', Vr: '1.0', DA: 1 } } },
    { id: 103, values: { points: { A: 41.5, W: 9560, Hz: 50.01, St: 'MPPT' } }, scaleFactors: { A_SF: -1, V_SF: -1, W_SF: 0, Hz_SF: -2, WH_SF: 0, Tmp_SF: -1 } },
    { id: 123, values: { points: { Conn: 'CONNECT', WMaxLimPct: 100, WMaxLimPct_WinTms: 0, WMaxLim_Ena: 'DISABLED' } }, scaleFactors: { WMaxLimPct_SF: -1 } },
    MPPT_MODULES,
    {
      id: 126,
      values: { points: { ActCrv: 1, ModEna: 0, NCrv: 1, NPt: 2 }, groups: { curve: [{ ActPt: 2, DeptRef: 2, V1: 95, VAr1: 40, V2: 105, VAr2: -40, ReadOnly: 0 }] } },
      scaleFactors: { V_SF: 0, DeptRef_SF: 0, RmpIncDec_SF: 0 },
    },
    { id: 704, values: { points: { WMaxLimPctEna: 0, WMaxLimPct: 100, WSetEna: 0, WSetMod: 1, WSet: 5000, WSetRvrt: 0 } }, scaleFactors: { PF_SF: -3, WMaxLimPct_SF: 0, WSet_SF: 0, WSetPct_SF: 0, VarSet_SF: 0, VarSetPct_SF: 0 } },
    {
      id: 705,
      values: {
        points: { Ena: 0, AdptCrvReq: 0, AdptCrvRslt: 1, RvrtTms: 0, RvrtRem: 0, RvrtCrv: 0 },
        groups: { Crv: [curve(1), curve(2)], 'Crv[0].Pt': points(1), 'Crv[1].Pt': points(2) },
      },
      scaleFactors: { V_SF: 0, DeptRef_SF: 0, RspTms_SF: 0 },
    },
  ]);
}

/**
 * An inverter in normal operation, as automation acts on it: models 1, 103 (producing, no event
 * bits set, cabinet and heat sink at ordinary temperatures, Tmp_SF -1), 120 (WRtg: the rating a
 * capacity interlock needs), 123 with every control implemented (Conn, WMaxLimPct, OutPFSet and
 * VArPct with their window, revert and ramp times and enables; WMaxLimPct_SF -1, so 50 % is the
 * register value 500) and 160 with three MPPT modules.
 */
export function operatingInverterImage(opts: { wRtg?: number; serial?: string } = {}): Uint16Array {
  const wRtg = opts.wRtg ?? 10000;
  return buildImage([
    { id: 1, values: { points: { Mn: 'dCMMS', Md: 'SimInverter', SN: opts.serial ?? 'INV-0003', Vr: '1.0', DA: 1 } } },
    {
      id: 103,
      values: {
        points: { A: 14.2, AphA: 4.7, AphB: 4.8, AphC: 4.7, PhVphA: 230.1, PhVphB: 229.8, PhVphC: 230.4, W: 3250, Hz: 50.01, VA: 3300, VAr: 120, PF: 0.98, WH: 123456, TmpCab: 41.2, TmpSnk: 45.0, St: 'MPPT', Evt1: 0, Evt2: 0 },
      },
      scaleFactors: { A_SF: -1, V_SF: -1, W_SF: 0, Hz_SF: -2, VA_SF: 0, VAr_SF: 0, PF_SF: -2, WH_SF: 0, Tmp_SF: -1 },
    },
    { id: 120, values: { points: { DERTyp: 'PV', WRtg: wRtg, VARtg: wRtg } }, scaleFactors: { WRtg_SF: 0, VARtg_SF: 0 } },
    {
      id: 123,
      values: {
        points: {
          Conn_WinTms: 0, Conn_RvrtTms: 0, Conn: 'CONNECT',
          WMaxLimPct: 100, WMaxLimPct_WinTms: 0, WMaxLimPct_RvrtTms: 0, WMaxLimPct_RmpTms: 0, WMaxLim_Ena: 'DISABLED',
          OutPFSet: 1, OutPFSet_WinTms: 0, OutPFSet_RvrtTms: 0, OutPFSet_RmpTms: 0, OutPFSet_Ena: 'DISABLED',
          VArWMaxPct: 0, VArMaxPct: 0, VArAvalPct: 0, VArPct_WinTms: 0, VArPct_RvrtTms: 0, VArPct_RmpTms: 0, VArPct_Mod: 'NONE', VArPct_Ena: 'DISABLED',
        },
      },
      scaleFactors: { WMaxLimPct_SF: -1, OutPFSet_SF: -3, VArPct_SF: 0 },
    },
    MPPT_MODULES,
  ]);
}
