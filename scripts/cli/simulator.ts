/**
 * `dcmms-edge simulator`: the site simulator in the foreground, and its control commands.
 *
 *   simulator [--host H] --port P [--time-scale N] [--seed S] [--start ISO] [--inverters N]
 *             [--strings N] [--cloudiness 0..1] [--latitude D] [--longitude D] [--poll-ms MS] [--log-level L]
 *       Serve the plant; print the ModbusAdapter device configuration (JSON) on stdout; run until SIGINT/SIGTERM.
 *   simulator fault --port P --kind KIND [--unit U] [--string N] [--factor F] [--delta-c C] [--loss L]
 *             [--offset-deg D] [--input I --value true|false]
 *   simulator clear --port P [--id ID]        (all faults without --id)
 *   simulator operate --port P --kind string-switch --unit U --string N --closed true|false
 *   simulator operate --port P --kind breaker --closed true|false      (by hand on site; not a fault)
 *   simulator clean --port P [--unit U]       (wash one inverter's modules, or all: accumulated soiling to 0)
 *   simulator state|devices|config|faults --port P
 * The control commands talk to the running simulator over its Unix socket (scripts/simulator/control.ts).
 */
import { createLogger, isLogLevel } from '../../components/lib/logger';
import { createSiteSimulator, type FaultSpec } from '../simulator';
import { controlRequest, controlSocketPath, startControlServer } from '../simulator/control';
import { CliUsageError, parseCommand } from './args';
import { SIMULATOR, SIMULATOR_CLEAN, SIMULATOR_CLEAR, SIMULATOR_CONFIG, SIMULATOR_DEVICES, SIMULATOR_FAULT, SIMULATOR_FAULTS, SIMULATOR_OPERATE, SIMULATOR_STATE } from './commands';

const SUBCOMMANDS = { fault: SIMULATOR_FAULT, clear: SIMULATOR_CLEAR, operate: SIMULATOR_OPERATE, clean: SIMULATOR_CLEAN, state: SIMULATOR_STATE, devices: SIMULATOR_DEVICES, config: SIMULATOR_CONFIG, faults: SIMULATOR_FAULTS } as const;

const num = (v: unknown, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n)) throw new CliUsageError(`--${name} must be a number`);
  return n;
};

async function serve(args: string[]): Promise<number> {
  const { values } = parseCommand(SIMULATOR, args);
  const level = values['log-level'] ?? 'info';
  if (!isLogLevel(level)) throw new CliUsageError('--log-level is debug, info, warn or error');
  // Logs go to stderr so that stdout carries only the device configuration.
  const logger = createLogger({}, { level, write: (l) => process.stderr.write(l) });
  const start = values.start === undefined ? undefined : new Date(String(values.start));
  if (start && Number.isNaN(start.getTime())) throw new CliUsageError('--start must be an ISO date-time');
  const opt = <T>(k: string, v: T | undefined): Record<string, T> => (v === undefined ? {} : { [k]: v });
  const sim = await createSiteSimulator({
    host: typeof values.host === 'string' ? values.host : '127.0.0.1',
    port: num(values.port, 'port') ?? 5020,
    logger,
    ...opt('timeScale', num(values['time-scale'], 'time-scale')),
    ...opt('seed', num(values.seed, 'seed')),
    ...opt('startTime', start),
    ...opt('inverters', num(values.inverters, 'inverters')),
    ...opt('stringsPerInverter', num(values.strings, 'strings')),
    ...opt('cloudiness', num(values.cloudiness, 'cloudiness')),
    ...opt('latitude', num(values.latitude, 'latitude')),
    ...opt('longitude', num(values.longitude, 'longitude')),
  });
  const control = await startControlServer(sim, typeof values.control === 'string' ? values.control : undefined);
  process.stdout.write(JSON.stringify(sim.deviceConfig({ pollIntervalMs: num(values['poll-ms'], 'poll-ms') ?? 1000 }), null, 2) + '\n');
  logger.info('control socket', { path: control.path });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await control.close();
  await sim.close();
  return 0;
}

function faultFrom(values: Record<string, unknown>): FaultSpec {
  const kind = values.kind;
  if (typeof kind !== 'string') throw new CliUsageError('--kind is required');
  const spec: Record<string, unknown> = { kind };
  const map: [string, string][] = [['unit', 'unit'], ['string', 'string'], ['factor', 'factor'], ['delta-c', 'deltaC'], ['loss', 'loss'], ['offset-deg', 'offsetDeg']];
  for (const [flag, key] of map) if (values[flag] !== undefined) spec[key] = num(values[flag], flag);
  if (values.input !== undefined) spec.input = /^\d+$/.test(String(values.input)) ? Number(values.input) : values.input;
  if (values.value !== undefined) spec.value = values.value === 'true';
  return spec as unknown as FaultSpec;
}

export async function runSimulator(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub.startsWith('-')) return serve(args);
  const spec = SUBCOMMANDS[sub as keyof typeof SUBCOMMANDS];
  if (!spec) throw new CliUsageError(`unknown simulator command '${sub}' (${Object.keys(SUBCOMMANDS).join(', ')}; without one it serves the plant)`);
  const { values } = parseCommand(spec, rest);
  const port = num(values.port, 'port');
  const socket = typeof values.control === 'string' ? values.control : port !== undefined ? controlSocketPath(port) : undefined;
  if (socket === undefined) throw new CliUsageError('--port P (the simulator\'s Modbus port) or --control PATH is required');
  let r: { status: number; body: unknown };
  try {
    r = await send(sub, socket, values);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      const which = port !== undefined ? `with Modbus port ${port} ` : '';
      throw new Error(`no simulator ${which}is running on this machine (nothing answers on ${socket}). Start one with 'npm start' or 'dcmms-edge simulator --port P', and use the port it prints${typeof values.control === 'string' ? '' : '; if it runs with another TMPDIR, pass --control PATH'}`);
    }
    throw e;
  }
  process.stdout.write(JSON.stringify(r.body, null, 2) + '\n');
  return r.status < 300 ? 0 : 1;
}

async function send(sub: string, socket: string, values: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
  let r: { status: number; body: unknown };
  switch (sub) {
    case 'fault':
      r = await controlRequest(socket, 'POST', '/faults', faultFrom(values));
      break;
    case 'operate': {
      if (values.closed !== 'true' && values.closed !== 'false') throw new CliUsageError('--closed true|false is required');
      const op: Record<string, unknown> = { kind: values.kind, closed: values.closed === 'true' };
      for (const k of ['unit', 'string'] as const) if (values[k] !== undefined) op[k] = num(values[k], k);
      r = await controlRequest(socket, 'POST', '/operate', op);
      break;
    }
    case 'clean':
      r = await controlRequest(socket, 'POST', '/operate', { kind: 'clean', ...(values.unit !== undefined ? { unit: num(values.unit, 'unit') } : {}) });
      break;
    case 'clear':
      r = await controlRequest(socket, 'DELETE', typeof values.id === 'string' ? `/faults/${values.id}` : '/faults');
      break;
    case 'state':
    case 'devices':
    case 'config':
    case 'faults':
      r = await controlRequest(socket, 'GET', `/${sub}`);
      break;
    default:
      throw new CliUsageError(`unknown simulator command '${sub}'`);
  }
  return r;
}
