/**
 * The part every simulated device shares: register and bit tables served by the Modbus server,
 * communication loss (no answer) and frozen values (the tables stop changing).
 */
import { BitTable, ModbusDevice, ModbusException, ModbusExceptionCode, RegisterTable } from './modbus-server';

/** A run of registers from `start`. */
export interface RegisterBlock {
  start: number;
  values: ArrayLike<number>;
}

export interface DeviceTables {
  holding: RegisterBlock[];
  input: RegisterBlock[];
  coils: boolean[];
  discrete: boolean[];
}

export type DeviceKind = 'inverter' | 'meter' | 'weather' | 'tracker' | 'io' | 'combiner';

export interface DeviceInfo {
  unitId: number;
  kind: DeviceKind;
  assetId: string;
  /** 'sunspec' (SunSpec image at 40000) or the name of the register map it serves. */
  profile: string;
  description: string;
}

export abstract class SimDevice implements ModbusDevice {
  commLoss = false;
  private frozen: DeviceTables | undefined;

  constructor(
    readonly info: DeviceInfo,
    /** Brings the plant up to the current (simulated) time before a request is answered. */
    private readonly sync: () => void,
  ) {}

  /** The current tables (called after sync). */
  protected abstract tables(): DeviceTables;
  /** Holding register writes; throw ModbusException to refuse. */
  protected abstract applyRegisters(address: number, values: number[]): void;
  protected applyCoils(address: number, values: boolean[]): void {
    void address;
    void values;
    throw new ModbusException(ModbusExceptionCode.ILLEGAL_FUNCTION, `${this.info.assetId} has no coils`);
  }

  freeze(on: boolean): void {
    if (on) {
      this.sync();
      this.frozen = this.copyTables(this.tables());
    } else this.frozen = undefined;
  }

  get isFrozen(): boolean {
    return this.frozen !== undefined;
  }

  answering(): boolean {
    return !this.commLoss;
  }

  private current(): DeviceTables {
    if (this.frozen) return this.frozen;
    this.sync();
    return this.tables();
  }

  private copyTables(t: DeviceTables): DeviceTables {
    return {
      holding: t.holding.map((b) => ({ start: b.start, values: Array.from(b.values) })),
      input: t.input.map((b) => ({ start: b.start, values: Array.from(b.values) })),
      coils: [...t.coils],
      discrete: [...t.discrete],
    };
  }

  readRegisters(table: RegisterTable, address: number, quantity: number): number[] {
    const blocks = this.current()[table];
    for (const b of blocks) {
      if (address >= b.start && address + quantity <= b.start + b.values.length) {
        return Array.from({ length: quantity }, (_, i) => b.values[address - b.start + i]);
      }
    }
    throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: ${table} ${address}+${quantity} is not mapped`);
  }

  readBits(table: BitTable, address: number, quantity: number): boolean[] {
    const bits = this.current()[table];
    if (address + quantity > bits.length) throw new ModbusException(ModbusExceptionCode.ILLEGAL_DATA_ADDRESS, `${this.info.assetId}: ${table} ${address}+${quantity} is not mapped`);
    return bits.slice(address, address + quantity);
  }

  writeRegisters(address: number, values: number[]): void {
    this.sync();
    this.applyRegisters(address, values);
  }

  writeCoils(address: number, values: boolean[]): void {
    this.sync();
    this.applyCoils(address, values);
  }
}
