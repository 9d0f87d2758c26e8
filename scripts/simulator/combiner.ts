/**
 * DC combiner boxes: one per inverter, one channel per MPPT input string (the simulator's "string",
 * model 160 module ID k is channel k of the inverter's box). Each channel has a disconnect switch
 * (a coil: closed = the string feeds the inverter), a current sensor and a voltage sensor on the
 * string's side of the switch, and an insulation fault location channel (IEC 61557-9), as string
 * monitoring boxes on PV plants have. The box derives a status word per channel from them.
 *
 * The register map is declared once (ModbusAdapter register-map point shape) and both the served
 * registers and the emitted device configuration come from it: measurements are input registers
 * (FC 4, read-only by the Modbus data model), the status words holding registers (FC 3, read-only
 * here), the switches coils (FC 1, written with FC 5/15), the only writable points.
 */
import { DeviceInfo, DeviceTables, SimDevice } from './device';
import { registerBlock, type MapPoint } from './map-devices';
import { ModbusException, ModbusExceptionCode } from './modbus-server';
import type { InverterState, Plant } from './plant';

export const COMBINER_MAP_NAME = 'dcmms-sim-combiner';
/** Status word bits of a channel, bit 0 first. */
export const COMBINER_STATUS_BITS = ['open', 'lowCurrent', 'insulationFault'] as const;
/** Channels per box at most: each measurement has a block of 16 input registers. */
export const COMBINER_MAX_STRINGS = 16;
/** A closed string carrying less than this share of the box's strongest string is flagged lowCurrent. */
const LOW_CURRENT_SHARE = 0.5;
/** ... provided the strongest carries at least this (at night or when the inverter is off nothing is low). */
const LOW_CURRENT_MIN_A = 1;
/** Insulation below this is a fault (an inverter needs about 30 kilohm to start, IEC 62109-2). */
const INSULATION_ALARM_KOHM = 100;

/** The register map of a box with `strings` channels (zero-based protocol addresses). */
export function combinerMap(strings: number): MapPoint[] {
  const ks = Array.from({ length: strings }, (_, i) => i + 1);
  return [
    ...ks.map((k): MapPoint => ({ name: `string${k}.closed`, address: k - 1, functionCode: 1, type: 'bool', writable: true })),
    ...ks.map((k): MapPoint => ({ name: `string${k}.current`, address: k - 1, functionCode: 4, type: 'int16', scale: 0.01, unit: 'A' })),
    ...ks.map((k): MapPoint => ({ name: `string${k}.voltage`, address: COMBINER_MAX_STRINGS + k - 1, functionCode: 4, type: 'uint16', scale: 0.1, unit: 'V' })),
    ...ks.map((k): MapPoint => ({ name: `string${k}.insulation`, address: 2 * COMBINER_MAX_STRINGS + k - 1, functionCode: 4, type: 'uint16', unit: 'kOhm' })),
    ...ks.map((k): MapPoint => ({ name: `string${k}.status`, address: k - 1, functionCode: 3, type: 'bitfield', bits: [...COMBINER_STATUS_BITS] })),
  ];
}

export interface CombinerChannel {
  /** 1-based, as the string (MPPT input) of the inverter. */
  id: number;
  closed: boolean;
  a: number;
  v: number;
  insulationKOhm: number;
  status: (typeof COMBINER_STATUS_BITS)[number][];
}

/** What a box measures on its channels now. */
export function combinerChannels(plant: Plant, inv: InverterState): CombinerChannel[] {
  const strongest = Math.max(0, ...inv.strings.filter((s) => s.closed).map((s) => s.a));
  return inv.strings.map((s) => {
    const insulationKOhm = plant.insulationKOhm(inv, s.index);
    const status: CombinerChannel['status'] = [];
    if (!s.closed) status.push('open');
    if (s.closed && strongest >= LOW_CURRENT_MIN_A && s.a < LOW_CURRENT_SHARE * strongest) status.push('lowCurrent');
    if (insulationKOhm < INSULATION_ALARM_KOHM) status.push('insulationFault');
    return { id: s.index + 1, closed: s.closed, a: s.a, v: s.v, insulationKOhm, status };
  });
}

export class CombinerDevice extends SimDevice {
  constructor(
    info: DeviceInfo,
    sync: () => void,
    private readonly plant: Plant,
    private readonly inv: InverterState,
    private readonly map: MapPoint[],
  ) {
    super(info, sync);
  }

  protected tables(): DeviceTables {
    const channels = combinerChannels(this.plant, this.inv);
    const values: Record<string, number> = {};
    for (const c of channels) {
      values[`string${c.id}.current`] = c.a;
      values[`string${c.id}.voltage`] = c.v;
      values[`string${c.id}.insulation`] = c.insulationKOhm;
      values[`string${c.id}.status`] = c.status.reduce((w, name) => w | (1 << COMBINER_STATUS_BITS.indexOf(name)), 0);
    }
    return {
      holding: [{ start: 0, values: registerBlock(this.map, 3, values) }],
      input: [{ start: 0, values: registerBlock(this.map, 4, values) }],
      coils: channels.map((c) => c.closed),
      discrete: [],
    };
  }

  protected applyRegisters(address: number): void {
    throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: register ${address} is not writable (only the disconnect coils are)`);
  }

  protected applyCoils(address: number, values: boolean[]): void {
    if (address + values.length > this.inv.strings.length) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: coil ${address}+${values.length} is not mapped`);
    values.forEach((closed, i) => this.plant.setStringSwitch(this.inv, address + i, closed));
  }
}
