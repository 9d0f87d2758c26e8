/** SunSpec register images for the ModbusAdapter tests, built from the model definitions. */
import { buildImage } from '../sunspec';

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
    {
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
    },
  ]);
}
