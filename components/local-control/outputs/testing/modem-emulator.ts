/**
 * OUR EMULATOR of a GSM/LTE modem, not a real one: no real modem (nor an independent emulator of
 * one) exists on a CI machine, so the SMS tests talk to this. It sits on one end of a socat
 * pseudo-terminal pair (`socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B`, Debian socat); the code
 * under test opens the other end with the serialport package, exactly as it opens /dev/ttyUSB2 on a
 * gateway.
 *
 * It answers the AT commands of SMS text mode the way modems do (3GPP TS 27.005, TS 27.007, ITU-T
 * V.250): echo on until ATE0, `OK` / `ERROR`, AT+CMGF, AT+CSCS, AT+CMGS="<number>" -> `\r\n> `
 * then the text up to Ctrl-Z (0x1A; ESC 0x1B cancels) -> `+CMGS: <ref>` and `OK`, or
 * `+CMS ERROR: <n>`. AT+CMGS before AT+CMGF=1 is refused (+CMS ERROR: 302), as a modem in PDU mode
 * would misread it. Tests script faults: an error for the next message, a refused number, a slow
 * or a missing answer, unsolicited result codes. It records every command, every message and any
 * protocol violation (a command while a message text was expected or an answer was due).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SerialPort } from 'serialport';

export type NextAnswer = 'ok' | 'error' | 'silent' | { cms: number };

export interface EmulatedSms {
  number: string;
  text: string;
  ref: number;
}

export interface ModemEmulator {
  /** The device the code under test opens (the DTE end of the pty pair). */
  readonly device: string;
  /** Command lines received, in order (without the CR). */
  readonly commands: string[];
  readonly messages: EmulatedSms[];
  /** A command arrived while the emulator was not ready for one; should stay empty. */
  readonly violations: string[];
  /** Answers to the next messages submitted (Ctrl-Z), in order; then `ok`. */
  next: NextAnswer[];
  /** Numbers the network refuses with this +CMS ERROR. */
  refuse: Map<string, number>;
  /** Delay before the final answer to a submitted message (a slow network). */
  cmgsDelayMs: number;
  /** Delay before the `> ` prompt after AT+CMGS (a slow modem); it waits for the text from the start. */
  promptDelayMs: number;
  /** Sends an unsolicited result code, e.g. `+CMTI: "SM",3`. */
  urc(line: string): void;
  waitForMessages(n: number, timeoutMs?: number): Promise<EmulatedSms[]>;
  stop(): Promise<void>;
}

type Mode = { kind: 'command' } | { kind: 'text'; number: string; text: string } | { kind: 'busy' };

export async function startModemEmulator(dir: string): Promise<ModemEmulator> {
  const modemEnd = path.join(dir, 'modem');
  const dteEnd = path.join(dir, 'dte');
  const socat: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${modemEnd}`, `pty,raw,echo=0,link=${dteEnd}`], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!(fs.existsSync(modemEnd) && fs.existsSync(dteEnd))) {
    if (Date.now() > deadline || socat.exitCode !== null) throw new Error('socat did not create the pty pair');
    await new Promise((r) => setTimeout(r, 20));
  }
  const port = new SerialPort({ path: modemEnd, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));

  let echo = true;
  let textMode = false;
  let mode: Mode = { kind: 'command' };
  let line = '';
  let ref = 0;
  const waiters = new Set<() => void>();
  const send = (s: string): void => void port.write(s, 'latin1');
  const answer = (s: string): void => send(`\r\n${s}\r\n`);

  const emu: ModemEmulator = {
    device: dteEnd,
    commands: [],
    messages: [],
    violations: [],
    next: [],
    refuse: new Map(),
    cmgsDelayMs: 0,
    promptDelayMs: 0,
    urc: (l) => answer(l),
    waitForMessages(n, timeoutMs = 20_000) {
      if (emu.messages.length >= n) return Promise.resolve(emu.messages.slice());
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (emu.messages.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(emu.messages.slice());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`modem emulator: ${emu.messages.length} of ${n} messages after ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    async stop() {
      await new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve()));
      if (socat.exitCode === null && socat.signalCode === null) {
        await new Promise<void>((resolve) => {
          socat.once('exit', () => resolve());
          socat.kill('SIGTERM');
        });
      }
    },
  };

  const command = (cmd: string): void => {
    emu.commands.push(cmd);
    if (echo) send(`${cmd}\r`);
    const up = cmd.toUpperCase();
    if (up === 'AT') return answer('OK');
    if (up === 'ATE0') {
      echo = false;
      return answer('OK');
    }
    if (up === 'ATE1') {
      echo = true;
      return answer('OK');
    }
    if (up === 'AT+CMGF=1' || up === 'AT+CMGF=0') {
      textMode = up.endsWith('1');
      return answer('OK');
    }
    if (/^AT\+CSCS="(IRA|GSM|UCS2)"$/.test(up)) return answer('OK');
    const cmgs = /^AT\+CMGS="(\+?\d+)"$/i.exec(cmd);
    if (cmgs) {
      if (!textMode) return answer('+CMS ERROR: 302');
      mode = { kind: 'text', number: cmgs[1]!, text: '' };
      if (emu.promptDelayMs > 0) setTimeout(() => send('\r\n> '), emu.promptDelayMs);
      else send('\r\n> ');
      return;
    }
    answer('ERROR');
  };

  const submit = (number: string, text: string): void => {
    mode = { kind: 'busy' };
    const planned = emu.next.shift() ?? 'ok';
    const refused = emu.refuse.get(number);
    const finish = (): void => {
      mode = { kind: 'command' };
      if (refused !== undefined) return answer(`+CMS ERROR: ${refused}`);
      if (planned === 'silent') return; // no answer at all: the DTE's timeout must handle it
      if (planned === 'error') return answer('ERROR');
      if (typeof planned === 'object') return answer(`+CMS ERROR: ${planned.cms}`);
      ref = (ref + 1) % 256;
      emu.messages.push({ number, text, ref });
      send(`\r\n+CMGS: ${ref}\r\n\r\nOK\r\n`);
      for (const w of [...waiters]) w();
    };
    if (emu.cmgsDelayMs > 0) setTimeout(finish, emu.cmgsDelayMs);
    else finish();
  };

  port.on('data', (chunk: Buffer) => {
    for (const ch of chunk.toString('latin1')) {
      if (mode.kind === 'text') {
        if (ch === '\x1a') submit(mode.number, mode.text);
        else if (ch === '\x1b') {
          mode = { kind: 'command' };
          answer('OK');
        } else if (ch === '\r') {
          mode.text += '\n';
          send('\r\n> ');
        } else mode.text += ch;
        continue;
      }
      if (ch === '\x1b') continue; // ESC outside text input: nothing to cancel
      if (ch === '\n') continue;
      if (ch !== '\r') {
        line += ch;
        continue;
      }
      const cmd = line.trim();
      line = '';
      if (!cmd) continue;
      if (mode.kind === 'busy') {
        emu.violations.push(`command ${JSON.stringify(cmd)} while an answer to a message was due`);
        continue;
      }
      command(cmd);
    }
  });
  return emu;
}
