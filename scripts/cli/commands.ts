/**
 * Every `dcmms-edge` command and its options, in one place: each command parses its arguments with
 * its spec here (args.ts parseCommand), and `--help` and the top-level usage are generated from the
 * same definitions. This file imports nothing heavy, so `dcmms-edge --help` stays fast.
 */
import { helpText, type CommandSpec, type OptionSpec } from './args';

const root: OptionSpec = { type: 'string', value: 'DIR', help: 'the nucleus root folder (the demo\'s: .nucleus)' };
const json: OptionSpec = { type: 'boolean', help: 'print JSON instead of a table' };
const simPort: OptionSpec = { type: 'string', value: 'P', help: 'the simulator\'s Modbus TCP port (finds its control socket <tmpdir>/dcmms-sim-P.sock)' };
const simControl: OptionSpec = { type: 'string', value: 'PATH', help: 'the simulator\'s control socket, instead of --port' };
const logLevel: OptionSpec = { type: 'string', value: 'LEVEL', help: 'debug, info, warn or error (default info)' };
const site: OptionSpec = { type: 'string', value: 'S', help: 'site id (default demo-site)' };
const operator: OptionSpec = { type: 'string', value: 'NAME', help: 'who asks, for the audit log (default cli:$USER)' };
const names: OptionSpec = { type: 'string', short: 'n', value: 'NAME[,NAME]', help: 'component name(s)' };

export const NUCLEUS: CommandSpec = {
  path: 'nucleus',
  summary: 'Run the local Greengrass runtime in the foreground (IPC socket at DIR/ipc.socket) until Ctrl-C.',
  details: 'It deploys nothing itself: deploy with `dcmms-edge deployment create`. Keep --root short: a Unix socket path is limited to 107 bytes.',
  options: {
    root: { ...root, help: 'the runtime\'s root folder (config, work, logs, packages); required' },
    'thing-name': { type: 'string', value: 'NAME', help: 'the core device\'s thing name (the MQTT client id)' },
    region: { type: 'string', value: 'REGION', help: 'the AWS Region components see in AWS_REGION (default us-east-1)' },
    'mqtt-url': { type: 'string', value: 'URL', help: 'mqtt://host:port of an external broker instead of the embedded IoT Core' },
    offline: { type: 'boolean', help: 'start with IoT Core unreachable (`dcmms-edge cloud online` ends it)' },
    'offline-behaviour': { type: 'string', value: 'spool|fail', help: 'QoS 1 publishes while offline: spooled (default) or refused' },
    'spool-bytes': { type: 'string', value: 'N', help: 'the offline spool\'s size in bytes (default 2621440, as mqtt.spooler)' },
    'log-level': logLevel,
    secrets: { type: 'string', value: 'FILE', help: 'JSON object of secret id -> value, served through GetSecretValue' },
    'stream-manager-endpoints': { type: 'string', value: 'JSON', help: 'the built-in Stream Manager\'s exporter endpoints, e.g. {"s3":"http://127.0.0.1:4568","kinesis":"http://127.0.0.1:4567"} (docs/stream-manager.md)' },
  },
};

export const DEPLOYMENT_CREATE: CommandSpec = {
  path: 'deployment create',
  summary: 'Create a local deployment, as `greengrass-cli deployment create`.',
  options: {
    root: { ...root, help: 'the running nucleus\'s root folder; required' },
    recipeDir: { type: 'string', value: 'DIR', help: 'folder of recipes (e.g. greengrass-build/recipes)' },
    artifactDir: { type: 'string', value: 'DIR', help: 'folder of artifacts (e.g. greengrass-build/artifacts)' },
    merge: { type: 'string', multiple: true, value: 'Name=Version', help: 'add or update a root component' },
    remove: { type: 'string', multiple: true, value: 'Name[,Name]', help: 'remove a root component' },
    'update-config': { type: 'string', value: 'JSON|FILE', help: '{"<component>": {"MERGE": {...}, "RESET": ["/pointer"]}}' },
    site: { type: 'string', value: 'ID', help: 'the site id, merged as siteId into every dCMMS component\'s configuration (as the CDK site deployment does)' },
    'failure-handling-policy': { type: 'string', value: 'ROLLBACK|DO_NOTHING', help: 'what a failed deployment does (default DO_NOTHING)' },
    wait: { type: 'boolean', help: 'wait for the result; exit 1 if the deployment failed' },
    'timeout-s': { type: 'string', value: 'S', help: 'how long --wait waits (default 600)' },
  },
};

export const DEPLOYMENT_STATUS: CommandSpec = {
  path: 'deployment status',
  summary: 'A local deployment\'s status, as JSON.',
  options: { root: { ...root, help: 'the running nucleus\'s root folder; required' }, deploymentId: { type: 'string', short: 'i', value: 'ID', help: 'the deployment id; required' } },
};

export const DEPLOYMENT_LIST: CommandSpec = {
  path: 'deployment list',
  summary: 'The local deployments and their status.',
  options: { root: { ...root, help: 'the running nucleus\'s root folder; required' } },
};

export const COMPONENT_LIST: CommandSpec = {
  path: 'component list',
  summary: 'The components of a running nucleus: name, version, state and uptime, one row each.',
  details:
    'State and version come from the nucleus over IPC (ListComponents, with the CLI\'s token). Uptime is the time since the component entered its current state, read from the nucleus log (DIR/logs/greengrass.log); "-" when that line is not in the log\'s last 4 MiB.',
  options: { root: { ...root, help: 'the running nucleus\'s root folder; required' }, json: { type: 'boolean', help: 'the full records (configuration included) as one JSON array' } },
};

export const COMPONENT_DETAILS: CommandSpec = {
  path: 'component details',
  summary: 'One component\'s version, state and configuration, as JSON.',
  options: { root: { ...root, help: 'the running nucleus\'s root folder; required' }, names: { ...names, help: 'the component; required' } },
};

export const COMPONENT_RESTART: CommandSpec = {
  path: 'component restart',
  summary: 'Restart components.',
  options: { root: { ...root, help: 'the running nucleus\'s root folder; required' }, names: { ...names, help: 'the component(s); required' } },
};

export const COMPONENT_STOP: CommandSpec = {
  path: 'component stop',
  summary: 'Stop components.',
  options: { root: { ...root, help: 'the running nucleus\'s root folder; required' }, names: { ...names, help: 'the component(s); required' } },
};

export const CLOUD: CommandSpec = {
  path: 'cloud',
  args: 'online|offline',
  summary: 'Make the simulated IoT Core reachable or unreachable for a running nucleus (`dcmms-edge nucleus` or `dcmms-edge demo`).',
  options: { root: { ...root, help: 'the running nucleus\'s root folder; required' } },
};

export const SIMULATOR: CommandSpec = {
  path: 'simulator',
  summary: 'Run the site simulator (a Modbus TCP solar plant) in the foreground; print the ModbusAdapter\'s device configuration (JSON) on stdout.',
  details: 'Subcommands talk to a running simulator: fault, clear, operate, clean, state, devices, config, faults (`dcmms-edge simulator fault --help`).',
  options: {
    host: { type: 'string', value: 'H', help: 'address to serve Modbus TCP on (default 127.0.0.1)' },
    port: { type: 'string', value: 'P', help: 'Modbus TCP port (default 5020; 0 picks a free one)' },
    'time-scale': { type: 'string', value: 'N', help: 'simulated seconds per real second (default 1)' },
    seed: { type: 'string', value: 'S', help: 'random seed' },
    start: { type: 'string', value: 'ISO', help: 'the plant\'s start time' },
    inverters: { type: 'string', value: 'N', help: 'number of inverters (default 3)' },
    strings: { type: 'string', value: 'N', help: 'strings per inverter' },
    cloudiness: { type: 'string', value: '0..1', help: 'how cloudy the sky is' },
    latitude: { type: 'string', value: 'DEG', help: 'the plant\'s latitude' },
    longitude: { type: 'string', value: 'DEG', help: 'the plant\'s longitude' },
    'poll-ms': { type: 'string', value: 'MS', help: 'poll interval in the printed device configuration (default 1000)' },
    'log-level': logLevel,
    control: { type: 'string', value: 'PATH', help: 'the control socket\'s path (default <tmpdir>/dcmms-sim-<port>.sock)' },
  },
};

const simTarget = { port: simPort, control: simControl };

export const SIMULATOR_FAULT: CommandSpec = {
  path: 'simulator fault',
  summary: 'Inject a fault into a running simulator; prints its id (docs/simulator.md lists the kinds).',
  options: {
    ...simTarget,
    kind: { type: 'string', value: 'KIND', help: 'string-fault, over-temperature, soiling, comm-loss, frozen, ground-fault, tracker-stuck, tracker-offset, digital-input, ...; required' },
    unit: { type: 'string', value: 'U', help: 'the device\'s Modbus unit id (inverters 1..N)' },
    string: { type: 'string', value: 'N', help: 'the string (1-based MPPT input)' },
    factor: { type: 'string', value: 'F', help: 'string-fault: the string\'s current factor (default 0.1)' },
    'delta-c': { type: 'string', value: 'C', help: 'over-temperature: degrees hotter (default 40)' },
    loss: { type: 'string', value: 'L', help: 'soiling: the share of light lost (default 0.25)' },
    'offset-deg': { type: 'string', value: 'D', help: 'tracker-offset: degrees off the ideal angle' },
    input: { type: 'string', value: 'I', help: 'digital-input: the input (name or number)' },
    value: { type: 'string', value: 'true|false', help: 'digital-input: its value' },
  },
};

export const SIMULATOR_CLEAR: CommandSpec = {
  path: 'simulator clear',
  summary: 'Clear one fault (--id) or all of them.',
  options: { ...simTarget, id: { type: 'string', value: 'ID', help: 'the fault\'s id (F1, ...); all faults without it' } },
};

export const SIMULATOR_OPERATE: CommandSpec = {
  path: 'simulator operate',
  summary: 'Operate a switch by hand, as someone on site: a combiner box\'s string disconnect or the breaker (not a fault).',
  options: {
    ...simTarget,
    kind: { type: 'string', value: 'string-switch|breaker', help: 'what to operate; required' },
    unit: { type: 'string', value: 'U', help: 'string-switch: the combiner box\'s unit id (111, 112, ...)' },
    string: { type: 'string', value: 'N', help: 'string-switch: the string' },
    closed: { type: 'string', value: 'true|false', help: 'close or open it; required' },
  },
};

export const SIMULATOR_CLEAN: CommandSpec = {
  path: 'simulator clean',
  summary: 'Wash the modules of one inverter, or all: accumulated soiling back to 0.',
  options: { ...simTarget, unit: { type: 'string', value: 'U', help: 'the inverter\'s unit id; all without it' } },
};

const simRead = (sub: string, what: string): CommandSpec => ({ path: `simulator ${sub}`, summary: `${what}, as JSON.`, options: { ...simTarget } });
export const SIMULATOR_STATE = simRead('state', 'The true plant state (what the devices would report without faults)');
export const SIMULATOR_DEVICES = simRead('devices', 'The simulated devices');
export const SIMULATOR_CONFIG = simRead('config', 'The ModbusAdapter device configuration for this simulator');
export const SIMULATOR_FAULTS = simRead('faults', 'The active faults');

export const QUERY: CommandSpec = {
  path: 'query',
  summary: 'Read one series of the gateway\'s time-series store, or list its series (--list).',
  details:
    'Opens the store read-only, so it is safe while the Processor writes. The demo\'s store: .nucleus/work/com.dcmms.edge.Processor/raw.db. Exits 1 when the file cannot be opened or the series does not exist.',
  options: {
    db: { type: 'string', value: 'FILE', help: 'the store file; required' },
    list: { type: 'boolean', help: 'list the series (asset, point, unit)' },
    asset: { type: 'string', value: 'A', help: 'the asset, e.g. INV-01' },
    point: { type: 'string', value: 'P', help: 'the point, e.g. 103.W' },
    from: { type: 'string', value: 'TIME', help: 'start: ISO 8601, epoch ms, now or now-<duration> (now-10m)' },
    to: { type: 'string', value: 'TIME', help: 'end, as --from' },
    downsample: { type: 'string', value: 'DUR[:AGG]', help: 'buckets, e.g. 1m:avg (avg, min, max, last)' },
    json: { type: 'boolean', help: 'print JSON' },
    csv: { type: 'boolean', help: 'print CSV' },
  },
};

export const CONTROL_MANUAL: CommandSpec = {
  path: 'control manual',
  summary: 'Take an asset out of LocalControl\'s automation (an operator request over the nucleus\'s IPC).',
  options: { root: { ...root, help: 'the running nucleus\'s root folder; required' }, asset: { type: 'string', value: 'A', help: 'the asset; required' }, site, reason: { type: 'string', value: 'TEXT', help: 'why, for the audit log' }, operator },
};

export const CONTROL_AUTOMATIC: CommandSpec = { ...CONTROL_MANUAL, path: 'control automatic', summary: 'Give an asset back to LocalControl\'s automation.' };

export const CONTROL_ACK: CommandSpec = {
  path: 'control ack',
  summary: 'Acknowledge an alarm (silences the horn).',
  options: { root: { ...root, help: 'the running nucleus\'s root folder; required' }, alarm: { type: 'string', value: 'ID', help: 'the alarm id (`dcmms-edge alarms`); required' }, site, reason: { type: 'string', value: 'TEXT', help: 'a note for the audit log' }, operator },
};

export const CONTROL_LOG: CommandSpec = {
  path: 'control log',
  summary: 'LocalControl\'s audit log (read-only; safe while it writes).',
  options: {
    db: { type: 'string', value: 'FILE', help: 'LocalControl\'s database, e.g. .nucleus/work/com.dcmms.edge.LocalControl/local-control.db; required' },
    asset: { type: 'string', value: 'A', help: 'only this asset' },
    since: { type: 'string', value: 'ISO', help: 'only entries from then on' },
    limit: { type: 'string', value: 'N', help: 'at most N entries (default 100)' },
    json: { type: 'boolean', help: 'one JSON object a line' },
  },
};

export const ANALYTICS: CommandSpec = {
  path: 'analytics',
  summary: 'Analytics\'s latest result per asset and kind, and its active alarms.',
  details: 'Reads Analytics\'s database read-only (safe while it writes): --db names it, --root finds it at DIR/work/com.dcmms.edge.Analytics/analytics.db.',
  options: { db: { type: 'string', value: 'FILE', help: 'Analytics\'s database' }, root: { ...root, help: 'a nucleus root folder, instead of --db' }, asset: { type: 'string', value: 'A', help: 'only this asset' }, kind: { type: 'string', value: 'K', help: 'only this kind, e.g. string_imbalance' }, json },
};

export const MODBUS_SCAN: CommandSpec = {
  path: 'modbus scan',
  summary: 'Commissioning: discover a SunSpec device and print every model and decoded point as JSON.',
  options: {
    host: { type: 'string', value: 'H', help: 'Modbus TCP host (or --serial)' },
    port: { type: 'string', value: 'P', help: 'Modbus TCP port (default 502)' },
    unit: { type: 'string', value: 'U', help: 'unit id (default 1)' },
    serial: { type: 'string', value: 'PATH', help: 'Modbus RTU serial device (or --host)' },
    baud: { type: 'string', value: 'B', help: 'RTU baud rate (default 9600)' },
    parity: { type: 'string', value: 'none|even|odd', help: 'RTU parity (default none)' },
    'stop-bits': { type: 'string', value: '1|2', help: 'RTU stop bits (default 1)' },
    timeout: { type: 'string', value: 'MS', help: 'per-request timeout (default 2000)' },
    base: { type: 'string', value: '40000|0|50000', help: 'look for \'SunS\' at this base only' },
  },
};

export const STATUS: CommandSpec = {
  path: 'status',
  summary: 'A running site at a glance: components, devices, active alarms, cloud link and backlog.',
  details:
    'Components: the nucleus over IPC (ListComponents). Everything else is read from the components\' own files, read-only (safe while they write): devices from the Processor\'s store (DIR/work/com.dcmms.edge.Processor/raw.db, the newest sample of each asset), active alarms from every alarm source\'s journal (alarm_active in DIR/work/*/*.db), cloud link and backlog from the Uplink\'s outbox (DIR/work/com.dcmms.edge.Uplink/outbox.db).',
  options: { root: { ...root, help: 'the nucleus root folder; required' }, json, 'stale-s': { type: 'string', value: 'S', help: 'a device without a sample for S seconds is shown stale (default 60)' } },
};

export const ALARMS: CommandSpec = {
  path: 'alarms',
  summary: 'The active alarms of a site, newest first, from every alarm source (Processor, Analytics, MLInference, LocalControl...).',
  details: 'Read-only from each source\'s alarm journal (the alarm_active table of DIR/work/<component>/*.db); safe while the components write, and works with the nucleus stopped.',
  options: { root: { ...root, help: 'the nucleus root folder; required' }, asset: { type: 'string', value: 'A', help: 'only this asset' }, json: { type: 'boolean', help: 'the full alarm messages as one JSON array' } },
};

export const DEMO: CommandSpec = {
  path: 'demo',
  summary: 'What `npm start` runs: the site simulator and the local nucleus with the built bundle deployed on the demo site, until Ctrl-C.',
  options: {
    root: { ...root, help: 'the nucleus root folder (default .nucleus)' },
    build: { type: 'string', value: 'DIR', help: 'the built bundle (default greengrass-build)' },
    'time-scale': { type: 'string', value: 'N', help: 'run the plant\'s day N times faster (default 1)' },
    'hmi-port': { type: 'string', value: 'PORT', help: 'the local HMI\'s HTTPS port (default 8443, the component\'s; 0: any free port, printed once it listens)' },
  },
};

/** Every command, in the order the top-level usage lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  DEMO, STATUS, ALARMS, NUCLEUS, DEPLOYMENT_CREATE, DEPLOYMENT_STATUS, DEPLOYMENT_LIST, COMPONENT_LIST, COMPONENT_DETAILS, COMPONENT_RESTART, COMPONENT_STOP,
  CLOUD, SIMULATOR, SIMULATOR_FAULT, SIMULATOR_CLEAR, SIMULATOR_OPERATE, SIMULATOR_CLEAN, SIMULATOR_STATE, SIMULATOR_DEVICES, SIMULATOR_CONFIG, SIMULATOR_FAULTS,
  QUERY, CONTROL_MANUAL, CONTROL_AUTOMATIC, CONTROL_ACK, CONTROL_LOG, ANALYTICS, MODBUS_SCAN,
];

/** The specs under a top-level command (`component` -> list, details, restart, stop). */
export function commandGroup(name: string): CommandSpec[] {
  return COMMANDS.filter((c) => c.path === name || c.path.startsWith(`${name} `));
}

export function findCommand(path: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.path === path);
}

/** The spec an argv names: `component list ...` -> COMPONENT_LIST; undefined when none. */
export function commandFor(argv: string[]): CommandSpec | undefined {
  const [a, b] = argv;
  if (a === undefined) return undefined;
  return (b !== undefined ? findCommand(`${a} ${b}`) : undefined) ?? findCommand(a);
}

/** Help of a top-level command that has subcommands: one usage line and summary each. */
export function groupHelp(name: string): string {
  const own = findCommand(name);
  const subs = commandGroup(name).filter((s) => s !== own);
  const lines = subs.map((s) => `  ${(s.path + (s.args ? ` ${s.args}` : '')).padEnd(26)}  ${s.summary}`);
  const tail = `\n'dcmms-edge ${name} <subcommand> --help' lists a subcommand's options.\n`;
  if (own) return `${helpText(own)}\nsubcommands:\n${lines.join('\n')}\n${tail}`;
  return `usage: dcmms-edge ${name} <${subs.map((s) => s.path.slice(name.length + 1)).join('|')}> [options]\n\n${lines.join('\n')}\n${tail}`;
}

export function topUsage(): string {
  const lines = COMMANDS.map((s) => `  ${(s.path + (s.args ? ` ${s.args}` : '')).padEnd(26)}  ${s.summary}`);
  return `usage: dcmms-edge <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n'dcmms-edge <command> --help' lists a command's options.\n`;
}
