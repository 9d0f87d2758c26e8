/**
 * Test peer: pymodbus 3.0.0 (Debian python3-pymodbus, a Modbus server written by others) serving a
 * register image on 127.0.0.1, port 0. Private to the ModbusAdapter tests until the shared
 * test/helpers/pymodbus.ts exists.
 *
 * - TCP: the pymodbus TCP server with the socket (MBAP) framer.
 * - RTU: the same TCP server with pymodbus's RTU framer, and socat joining a pseudo-terminal to it,
 *   so the adapter opens a real serial device (serialport on a pty) and speaks RTU frames with CRC
 *   that pymodbus parses. (pymodbus's own serial server needs python3-serial, which Debian's
 *   pymodbus package only recommends; this way it is not needed.)
 *
 * Registers can be changed while it runs (`set`), e.g. a scale factor, and read back (`get`).
 * With `units`, only those unit ids answer (others get no answer, as an absent device on a bus);
 * `addUnit` brings another one up. `pause` makes the whole server stop answering, as a hung device
 * does (SIGSTOP: the kernel still accepts connections and takes requests, nothing answers them);
 * `resume` lets it go on with what queued up meanwhile.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { startLineRelay, type LineRelay } from './serial-line';

export interface ImageSpec {
  /** Holding registers: start address -> values. */
  hr?: Record<number, ArrayLike<number>>;
  ir?: Record<number, ArrayLike<number>>;
  co?: Record<number, ArrayLike<boolean | number>>;
  di?: Record<number, ArrayLike<boolean | number>>;
}

const SCRIPT = String.raw`
import sys, json, types, asyncio, threading, logging
logging.disable(logging.CRITICAL)
try:
    import serial  # noqa
except ImportError:
    m = types.ModuleType('serial'); m.serialutil = types.SimpleNamespace(SerialException=Exception); sys.modules['serial'] = m
try:
    import serial_asyncio  # noqa
except ImportError:
    m = types.ModuleType('serial_asyncio'); m.create_serial_connection = None; sys.modules['serial_asyncio'] = m
from pymodbus.server.async_io import ModbusTcpServer
from pymodbus.datastore import ModbusSparseDataBlock, ModbusSlaveContext, ModbusServerContext
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer

spec = json.load(open(sys.argv[1]))
def block(kind):
    values = {}
    for start, vals in (spec.get(kind) or {}).items():
        for i, v in enumerate(vals):
            values[int(start) + i] = v
    return ModbusSparseDataBlock(values if values else {0: 0})
slave = ModbusSlaveContext(di=block('di'), co=block('co'), hr=block('hr'), ir=block('ir'), zero_mode=True)
units = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
# With a unit list, other unit ids get no answer at all (ignore_missing_slaves), like an absent device.
context = ModbusServerContext(slaves={u: slave for u in units}, single=False) if units else ModbusServerContext(slaves=slave, single=True)
FC = {'co': 1, 'di': 2, 'hr': 3, 'ir': 4}

async def main():
    framer = ModbusRtuFramer if sys.argv[2] == 'rtu' else ModbusSocketFramer
    server = ModbusTcpServer(context, framer=framer, address=('127.0.0.1', 0), ignore_missing_slaves=True)
    task = asyncio.ensure_future(server.serve_forever())
    await server.serving
    port = server.server.sockets[0].getsockname()[1]
    print(json.dumps({'port': port}), flush=True)
    loop = asyncio.get_running_loop()
    def commands():
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd['op'] == 'set':
                slave.setValues(FC[cmd['kind']], cmd['address'], cmd['values'])
                print(json.dumps({'ok': cmd['id']}), flush=True)
            elif cmd['op'] == 'addUnit':
                context[cmd['unit']] = slave
                print(json.dumps({'ok': cmd['id']}), flush=True)
            elif cmd['op'] == 'get':
                print(json.dumps({'ok': cmd['id'], 'values': slave.getValues(FC[cmd['kind']], cmd['address'], cmd['count'])}), flush=True)
        loop.call_soon_threadsafe(task.cancel)
    threading.Thread(target=commands, daemon=True).start()
    try:
        await task
    except asyncio.CancelledError:
        pass
asyncio.run(main())
`;

export interface PymodbusServer {
  port: number;
  /** RTU only: the pty the adapter opens. */
  serialPath?: string;
  set(kind: 'hr' | 'ir' | 'co' | 'di', address: number, values: Array<number | boolean>): Promise<void>;
  get(kind: 'hr' | 'ir' | 'co' | 'di', address: number, count: number): Promise<number[]>;
  /** With `units`: make another unit id answer (the same registers). */
  addUnit(unit: number): Promise<void>;
  /** Stop answering (SIGSTOP). `set` and `get` are not answered until `resume` (10 s at most). */
  pause(): void;
  /** Answer again (SIGCONT). */
  resume(): void;
  stop(): Promise<void>;
}

function onceLine(rl: readline.Interface, proc: ChildProcess, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pymodbus: no ${what} in ${timeoutMs} ms`)), timeoutMs);
    const onExit = (code: number | null): void => {
      clearTimeout(t);
      reject(new Error(`pymodbus exited (${String(code)}) before ${what}`));
    };
    proc.once('exit', onExit);
    rl.once('line', (l) => {
      clearTimeout(t);
      proc.off('exit', onExit);
      resolve(l);
    });
  });
}

function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 2000).unref();
  });
}

/**
 * `lineBaud` (RTU only): deliver bytes between the pty and pymodbus at that serial line rate
 * (serial-line.ts); without it the pty passes bytes as fast as the machine can.
 */
export async function startPymodbus(image: ImageSpec, opts: { framer?: 'tcp' | 'rtu'; lineBaud?: number; units?: number[] } = {}): Promise<PymodbusServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pymodbus-'));
  const json: Record<string, Record<string, unknown[]>> = {};
  for (const k of ['hr', 'ir', 'co', 'di'] as const) {
    const src = image[k];
    if (!src) continue;
    json[k] = Object.fromEntries(Object.entries(src).map(([a, v]) => [a, Array.from(v as ArrayLike<number | boolean>, (x) => (typeof x === 'boolean' ? x : Number(x)))]));
  }
  fs.writeFileSync(path.join(dir, 'image.json'), JSON.stringify(json));
  const proc = spawn('/usr/bin/python3', ['-u', '-c', SCRIPT, path.join(dir, 'image.json'), opts.framer === 'rtu' ? 'rtu' : 'tcp', ...(opts.units ? [JSON.stringify(opts.units)] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const rl = readline.createInterface({ input: proc.stdout as NodeJS.ReadableStream });
  let port: number;
  try {
    port = (JSON.parse(await onceLine(rl, proc, 20000, 'port')) as { port: number }).port;
  } catch (err) {
    await stopProcess(proc);
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  let socat: ChildProcess | undefined;
  let serialPath: string | undefined;
  let relay: LineRelay | undefined;
  if (opts.framer === 'rtu') {
    serialPath = path.join(dir, 'ttyS-client');
    if (opts.lineBaud !== undefined) relay = await startLineRelay(port, opts.lineBaud);
    socat = spawn('socat', [`pty,raw,echo=0,link=${serialPath}`, `tcp:127.0.0.1:${relay?.port ?? port}`], { stdio: 'ignore' });
    const deadline = Date.now() + 10000;
    while (!fs.existsSync(serialPath)) {
      if (Date.now() > deadline || socat.exitCode !== null) throw new Error('socat did not create the pty');
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  let nextId = 1;
  const request = async (cmd: Record<string, unknown>): Promise<{ values?: number[] }> => {
    const id = nextId++;
    const line = onceLine(rl, proc, 10000, `answer to ${String(cmd['op'])}`);
    proc.stdin?.write(JSON.stringify({ ...cmd, id }) + '\n');
    return JSON.parse(await line) as { values?: number[] };
  };
  return {
    port,
    ...(serialPath ? { serialPath } : {}),
    async set(kind, address, values) {
      await request({ op: 'set', kind, address, values });
    },
    async addUnit(unit) {
      await request({ op: 'addUnit', unit });
    },
    async get(kind, address, count) {
      return (await request({ op: 'get', kind, address, count })).values ?? [];
    },
    pause() {
      proc.kill('SIGSTOP');
    },
    resume() {
      proc.kill('SIGCONT');
    },
    async stop() {
      // A stopped process would only take SIGTERM once continued.
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGCONT');
      rl.close();
      if (socat) await stopProcess(socat);
      await relay?.close();
      proc.stdin?.end();
      await stopProcess(proc);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
