/**
 * An in-memory Modbus peer for unit tests with the FakeClock: a TransportFactory whose transports
 * answer from register images held here (per unit), record every request, and can be told to hold
 * writes (a write still executing) or to leave a unit unanswered (the link's guard times it out on
 * the injected clock). For the protocol itself use pymodbus (pymodbus.ts) or the simulator.
 */
import { TransientError } from '../../lib/errors';
import type { ResolvedConnection } from '../config';
import { ModbusErrorCode, ModbusException, type Transport, type TransportFactory } from '../transport';

export interface MemoryRequest {
  unit: number;
  op: 'read' | 'readBits' | 'write' | 'writeCoil';
  address: number;
  count: number;
  /** The connection (1-based, in order of opening) that carried it. */
  connection: number;
}

export class MemoryModbus {
  /** unit -> address -> value (holding and input registers share one image). */
  readonly registers = new Map<number, Map<number, number>>();
  readonly coils = new Map<number, Map<number, boolean>>();
  readonly requests: MemoryRequest[] = [];
  /** Units whose requests are never answered. */
  readonly silent = new Set<number>();
  connections = 0;
  private held: Array<() => void> | undefined;
  /** Open connections, to drop them from the peer's side. */
  private readonly open = new Set<() => void>();

  /** The peer closes every open connection (a device restarting, a gateway dropping its clients). */
  dropAll(): void {
    for (const drop of [...this.open]) drop();
  }

  /** Serve `values` from `address` for `unit`. */
  set(unit: number, address: number, values: number[]): void {
    const m = this.registers.get(unit) ?? new Map<number, number>();
    values.forEach((v, i) => m.set(address + i, v & 0xffff));
    this.registers.set(unit, m);
  }

  get(unit: number, address: number): number | undefined {
    return this.registers.get(unit)?.get(address);
  }

  writes(unit?: number): MemoryRequest[] {
    return this.requests.filter((r) => (r.op === 'write' || r.op === 'writeCoil') && (unit === undefined || r.unit === unit));
  }

  /** Writes wait until the returned function is called (a write in progress). */
  holdWrites(): () => void {
    this.held = [];
    return () => {
      const waiting = this.held ?? [];
      this.held = undefined;
      for (const go of waiting) go();
    };
  }

  readonly factory: TransportFactory = (_conn: ResolvedConnection) => {
    let open = false;
    let id = 0;
    const closeListeners: Array<() => void> = [];
    const drop = (): void => {
      if (!open) return;
      open = false;
      this.open.delete(drop);
      for (const l of closeListeners) l();
    };
    const answer = <T>(unit: number, op: MemoryRequest['op'], address: number, count: number, fn: () => T): Promise<T> => {
      if (!open) return Promise.reject(new TransientError(ModbusErrorCode.IO, 'not connected'));
      this.requests.push({ unit, op, address, count, connection: id });
      if (this.silent.has(unit)) return new Promise<T>(() => undefined);
      const run = (): T => fn();
      if ((op === 'write' || op === 'writeCoil') && this.held) {
        const held = this.held;
        return new Promise<T>((resolve, reject) => {
          held.push(() => {
            try {
              resolve(run());
            } catch (err) {
              reject(err);
            }
          });
        });
      }
      try {
        return Promise.resolve(run());
      } catch (err) {
        return Promise.reject(err);
      }
    };
    const image = (unit: number): Map<number, number> => {
      const m = this.registers.get(unit);
      if (!m) throw new ModbusException(11, `unit ${unit}`);
      return m;
    };
    const t: Transport = {
      get isOpen() {
        return open;
      },
      open: async () => {
        open = true;
        id = ++this.connections;
        this.open.add(drop);
      },
      close: async () => drop(),
      readRegisters: (unit, _fc, address, count) =>
        answer(unit, 'read', address, count, () => {
          const m = image(unit);
          return Array.from({ length: count }, (_v, i) => {
            const v = m.get(address + i);
            if (v === undefined) throw new ModbusException(2, `read ${address}+${count}`);
            return v;
          });
        }),
      readBits: (unit, _fc, address, count) =>
        answer(unit, 'readBits', address, count, () => Array.from({ length: count }, (_v, i) => this.coils.get(unit)?.get(address + i) ?? false)),
      writeRegisters: (unit, address, values) =>
        answer(unit, 'write', address, values.length, () => {
          const m = image(unit);
          values.forEach((v, i) => m.set(address + i, v & 0xffff));
        }),
      writeCoil: (unit, address, value) =>
        answer(unit, 'writeCoil', address, 1, () => {
          const m = this.coils.get(unit) ?? new Map<number, boolean>();
          m.set(address, value);
          this.coils.set(unit, m);
        }),
      onClose: (l) => void closeListeners.push(l),
    };
    return t;
  };
}
