/**
 * A GSM/LTE modem on a serial port, driven with AT commands in SMS text mode (3GPP TS 27.005 §3
 * and §4, TS 27.007 / ITU-T V.250 for the basic commands), the way field gateways send alarm SMS:
 *
 *   AT            -> OK                  (is anyone there)
 *   ATE0          -> OK                  (no echo of what we type)
 *   AT+CMGF=1     -> OK                  (text mode)
 *   AT+CSCS="IRA" -> OK or ERROR         (ASCII text; a modem without +CSCS keeps its default)
 *   AT+CMGS="<number>"  -> "> "          then the text and Ctrl-Z (0x1A)
 *                       -> +CMGS: <ref>, OK   or  +CMS ERROR: <n>  or  ERROR
 *
 * One command at a time (a promise chain): the modem is one half-duplex conversation shared by
 * every number and every SMS channel naming this device. Each command has a timeout; after one,
 * the modem's state is unknown, so the next use first sends ESC (0x1B, which ends a text input a
 * modem may still be waiting in, TS 27.005 §3.5.1) and runs the initialisation again. A port that
 * closes or fails to open is opened again at the next send.
 *
 * Unsolicited result codes (RING, +CMTI, ^RSSI...) between commands are ignored.
 */
import type { Clock, TimerHandle } from '../../lib/clock';
import type { Logger } from '../../lib/logger';
import { messageOf } from './types';

/** The serial line as the modem driver needs it; `openSerialPort` makes one with the serialport package. */
export interface SerialLink {
  write(data: string): Promise<void>;
  onData(fn: (chunk: Buffer) => void): void;
  onClose(fn: (err?: Error) => void): void;
  close(): Promise<void>;
}

export type OpenSerial = (device: string, baudRate: number) => Promise<SerialLink>;

/** The real serial port (the `serialport` package, the one modbus-serial uses). */
export const openSerialPort: OpenSerial = async (device, baudRate) => {
  // Loaded on first use: a site without an SMS channel never loads the native binding.
  const { SerialPort } = (await import('serialport')) as typeof import('serialport');
  const port = new SerialPort({ path: device, baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return {
    write: (data) =>
      new Promise<void>((resolve, reject) => {
        port.write(data, 'latin1', (err) => (err ? reject(err) : port.drain((e) => (e ? reject(e) : resolve()))));
      }),
    onData: (fn) => void port.on('data', fn),
    onClose: (fn) => {
      port.on('close', (err?: Error | null) => fn(err ?? undefined));
      port.on('error', (err: Error) => fn(err));
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
  };
};

export type ModemErrorKind = 'timeout' | 'error' | 'cms' | 'cme' | 'link' | 'closed';

export class ModemError extends Error {
  readonly kind: ModemErrorKind;
  /** The number of `+CMS ERROR: <n>` / `+CME ERROR: <n>` when the modem gave one. */
  readonly errorNumber: number | undefined;
  readonly code: string;
  constructor(kind: ModemErrorKind, message: string, n?: number) {
    super(message);
    this.name = 'ModemError';
    this.kind = kind;
    this.errorNumber = n;
    this.code = kind === 'cms' || kind === 'cme' ? `MODEM_${kind.toUpperCase()}_${n ?? 'X'}` : `MODEM_${kind.toUpperCase()}`;
  }
}

export interface AtModemOptions {
  device: string;
  baudRate: number;
  open: OpenSerial;
  clock: Clock;
  logger: Logger;
  commandTimeoutMs: number;
  sendTimeoutMs: number;
}

interface Waiter {
  /** Resolves on the prompt `> ` (AT+CMGS) instead of a final result. */
  prompt: boolean;
  lines: string[];
  echo: string;
  resolve: (lines: string[]) => void;
  reject: (err: ModemError) => void;
  timer: TimerHandle;
}

/** Quiet time after ESC before the input is discarded and AT is sent. */
const SETTLE_MS = 200;

const FINAL_CMS = /^\+CMS ERROR:\s*(\d+)?/i;
const FINAL_CME = /^\+CME ERROR:\s*(\d+)?/i;

export class AtModem {
  private link: SerialLink | undefined;
  private opening: Promise<SerialLink> | undefined;
  private buf = '';
  private waiter: Waiter | undefined;
  private ready = false;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Channels using this modem; it closes with the last one. */
  users = 0;

  constructor(private readonly o: AtModemOptions) {}

  /** Sends one SMS; resolves with the message reference the network gave (+CMGS). Serialised. */
  sendSms(number: string, text: string): Promise<number> {
    return this.exclusive(async () => {
      await this.ensureReady();
      // The number is checked by the options (digits and +), so it cannot break the command.
      await this.command(`AT+CMGS="${number}"`, this.o.commandTimeoutMs, true);
      const lines = await this.command(`${text}\x1a`, this.o.sendTimeoutMs, false, '');
      const ref = lines.map((l) => /^\+CMGS:\s*(\d+)/i.exec(l)).find((m) => m !== null);
      return ref ? Number(ref[1]) : -1;
    });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async ensureReady(): Promise<void> {
    if (this.closed) throw new ModemError('closed', 'modem closed');
    if (!this.link) {
      this.opening ??= this.o.open(this.o.device, this.o.baudRate).finally(() => (this.opening = undefined));
      let link: SerialLink;
      try {
        link = await this.opening;
      } catch (err) {
        throw new ModemError('link', `cannot open ${this.o.device}: ${messageOf(err)}`);
      }
      if (this.closed) {
        await link.close();
        throw new ModemError('closed', 'modem closed');
      }
      this.attach(link);
    }
    if (this.ready) return;
    // ESC first: a modem left waiting for a message text (a timeout mid-CMGS) takes it as "cancel".
    // What it answers to that (OK, or a late answer to the command that timed out) is discarded
    // after a short quiet time, so no stale answer is taken for the answer to the next command.
    await this.link!.write('\x1b\r');
    await new Promise<void>((resolve) => this.o.clock.setTimeout(resolve, Math.min(SETTLE_MS, this.o.commandTimeoutMs)));
    this.buf = '';
    // A modem just powered or left in text input may answer the first AT with noise: try a few.
    let lastErr: unknown;
    for (let i = 0; i < 3; i++) {
      try {
        await this.command('AT', this.o.commandTimeoutMs);
        lastErr = undefined;
        break;
      } catch (err) {
        lastErr = err;
        if (err instanceof ModemError && (err.kind === 'link' || err.kind === 'closed')) break;
      }
    }
    if (lastErr) throw lastErr;
    await this.command('ATE0', this.o.commandTimeoutMs);
    await this.command('AT+CMGF=1', this.o.commandTimeoutMs);
    try {
      await this.command('AT+CSCS="IRA"', this.o.commandTimeoutMs);
    } catch (err) {
      if (!(err instanceof ModemError) || (err.kind !== 'error' && err.kind !== 'cme')) throw err;
      this.o.logger.info('modem has no IRA character set; using its default', { device: this.o.device });
    }
    this.ready = true;
  }

  private attach(link: SerialLink): void {
    this.link = link;
    this.buf = '';
    link.onData((chunk) => this.onData(chunk));
    link.onClose((err) => {
      if (this.link !== link) return;
      this.link = undefined;
      this.ready = false;
      if (!this.closed) this.o.logger.warn('modem serial port closed', { device: this.o.device, err: err?.message });
      this.fail(new ModemError('link', `serial port ${this.o.device} closed${err ? `: ${err.message}` : ''}`));
      void link.close().catch(() => undefined);
    });
  }

  /**
   * Writes `cmd` + CR (or `raw` as given) and waits for the final result, or the `> ` prompt.
   * Rejects with ModemError on ERROR, +CMS ERROR, +CME ERROR, a timeout or a closed port.
   */
  private command(cmd: string, timeoutMs: number, prompt = false, terminator = '\r'): Promise<string[]> {
    const link = this.link;
    if (!link) return Promise.reject(new ModemError('link', `serial port ${this.o.device} is not open`));
    return new Promise<string[]>((resolve, reject) => {
      const timer = this.o.clock.setTimeout(() => {
        if (this.waiter?.timer !== timer) return;
        this.waiter = undefined;
        // Unknown state now: initialise again (ESC first) before the next command.
        this.ready = false;
        reject(new ModemError('timeout', `no answer to ${describe(cmd)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { prompt, lines: [], echo: cmd.trim(), resolve, reject, timer };
      link.write(cmd + terminator).catch((err: unknown) => this.fail(new ModemError('link', `write to ${this.o.device} failed: ${messageOf(err)}`)));
    });
  }

  private fail(err: ModemError): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    this.o.clock.clearTimeout(w.timer);
    w.reject(err);
  }

  private settle(lines: string[] | ModemError): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    this.o.clock.clearTimeout(w.timer);
    if (lines instanceof ModemError) w.reject(lines);
    else w.resolve(lines);
  }

  private onData(chunk: Buffer): void {
    this.buf += chunk.toString('latin1');
    if (this.buf.length > 65536) this.buf = this.buf.slice(-4096); // a babbling line cannot grow memory
    for (;;) {
      const w = this.waiter;
      // The prompt has no line end: "\r\n> ".
      if (w?.prompt && /^[\r\n]*> ?/.test(this.buf)) {
        this.buf = this.buf.replace(/^[\r\n]*> ?/, '');
        this.settle([]);
        continue;
      }
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) return;
      const line = this.buf.slice(0, m.index).trim();
      this.buf = this.buf.slice(m.index + m[0].length);
      if (line === '' || !w) continue;
      if (line === w.echo || line === '>' ) continue; // echo (before ATE0) or a stray prompt
      if (line === 'OK' && w.prompt) {
        // Not the prompt: the modem and we disagree about where the conversation is.
        this.ready = false;
        this.settle(new ModemError('error', `modem answered OK instead of the > prompt to ${describe(w.echo)}`));
      } else if (line === 'OK') this.settle(w.lines);
      else if (line === 'ERROR') this.settle(new ModemError('error', `modem answered ERROR to ${describe(w.echo)}`));
      else if (FINAL_CMS.test(line)) {
        const n = FINAL_CMS.exec(line)![1];
        this.settle(new ModemError('cms', `modem answered ${line} to ${describe(w.echo)}`, n === undefined ? undefined : Number(n)));
      } else if (FINAL_CME.test(line)) {
        const n = FINAL_CME.exec(line)![1];
        this.settle(new ModemError('cme', `modem answered ${line} to ${describe(w.echo)}`, n === undefined ? undefined : Number(n)));
      } else if (w.lines.length < 64) w.lines.push(line);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new ModemError('closed', 'modem closed'));
    const link = this.link ?? (await this.opening?.catch(() => undefined));
    this.link = undefined;
    await link?.close();
  }
}

/**
 * A command as logs and errors show it: the message text is not repeated (it is the alarm, and
 * long), and a phone number only by its last four digits.
 */
function describe(cmd: string): string {
  return cmd.startsWith('AT') ? cmd.trim().replace(/"\+?\d+(\d{4})"/, '"...$1"') : 'the message text';
}

/** A phone number as logs show it: its last four digits. */
export function maskNumber(n: string): string {
  return n.length > 4 ? `...${n.slice(-4)}` : n;
}
