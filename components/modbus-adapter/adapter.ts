/**
 * com.dcmms.edge.ModbusAdapter: owns every Modbus connection of the site, polls the configured
 * devices, publishes one raw telemetry message per poll and device status (on change and on a
 * heartbeat), and executes control commands for LocalControl.
 *
 * Topics (all from the contract): telemetry `site/{siteId}/scada/{assetId}/telemetry`, device
 * status `site/{siteId}/devices/{assetId}/status`, commands in on
 * `site/{siteId}/control/+/command`, results out on `site/{siteId}/control/{assetId}/result`.
 *
 * Live configuration (`reconfigure`): devices added are started, devices removed are stopped,
 * devices whose effective configuration changed (their entry, the register map they use, the
 * timeout they get, the adapter-wide settings a device uses, their link's settings) are restarted;
 * every other device keeps polling on its timer, with its sequence numbers, without a gap. A link
 * no device uses any more is closed. Everything restarts only when the site id changes.
 */
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { CONTRACT_VERSION, filters, topics, type ComponentState, type ControlResult, type Point } from '../lib/contract';
import { ConfigError, errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { CommandMemory, handleCommand, type CommandContext } from './commands';
import { configError, configProblems, endpointKey, linkKey, maxConnectionsFor, parseEndpoint, resolveConnection, type DeviceConfig, type ModbusAdapterConfig, type ResolvedConnection } from './config';
import { Device, type DeviceStats, type DeviceStatusUpdate } from './device';
import { Link } from './link';
import { registerMapProfile, type Profile } from './profile';
import { sunspecProfile } from './sunspec-profile';
import { modbusSerialTransport, type TransportFactory } from './transport';

export interface ModbusAdapterDeps {
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Default: modbus-serial. Tests may inject another. */
  transport?: TransportFactory;
  random?: () => number;
  /**
   * Spread device start times across their interval (default true; see startOffsets). False: every
   * device polls first at start, as before (the benchmark measures the burst both ways).
   */
  spreadStarts?: boolean;
}

export interface ModbusAdapter extends ComponentInstance<ModbusAdapterConfig> {
  stats(): DeviceStats[];
}

type Config = Readonly<ModbusAdapterConfig>;

function profileFor(d: DeviceConfig, config: Config): Profile {
  const maxRegisters = d.maxRegistersPerRead ?? 125;
  if (d.profile.type === 'sunspec') {
    return sunspecProfile({ maxRegisters, staticModels: config.staticModels, ...(d.profile.baseAddress !== undefined ? { baseAddress: d.profile.baseAddress } : {}), ...(d.profile.models ? { models: d.profile.models } : {}) });
  }
  const map = config.registerMaps[d.profile.map];
  if (!map) throw new ConfigError(`devices.${d.assetId}.profile.map`, `register map '${d.profile.map}' is not defined`);
  return registerMapProfile(map, { maxRegisters, maxGap: d.maxGapRegisters ?? 0 });
}

/** Everything a link is built from: a link whose fingerprint changes is replaced. */
function linkFingerprint(c: Config, conn: ResolvedConnection): string {
  return JSON.stringify([conn, c.reconnectInitialMs, c.reconnectMaxMs, maxConnectionsFor(c, conn)]);
}

/** Everything a device is built from: a device whose fingerprint changes is restarted. */
function deviceFingerprint(c: Config, d: DeviceConfig): string {
  const map = d.profile.type === 'registerMap' ? (c.registerMaps[d.profile.map] ?? null) : null;
  const statics = d.profile.type === 'sunspec' ? c.staticModels : null;
  return JSON.stringify([d, map, d.timeoutMs ?? c.defaultTimeoutMs, c.offlineAfterFailures, c.rediscoverIntervalMs, c.maxPendingWrites, statics, linkFingerprint(c, resolveConnection(d.connection))]);
}

const enabled = (c: Config): DeviceConfig[] => c.devices.filter((d) => d.enabled !== false);

/**
 * When each device polls first, ms after it starts: device i of n (the enabled devices, in
 * configuration order) at i x its interval / n, so n devices polling every second send their
 * requests spread over the second instead of all in the same millisecond (a gateway, the network
 * and this process see a steady load, not a burst). Even spacing by position rather than a hash of
 * the asset id: a hash spreads at random, and random phases cluster (200 devices over a second:
 * up to about 7 in one 10 ms window instead of 2). A device keeps its phase while it runs; one
 * added or restarted by a configuration change takes its position in the new configuration.
 */
export function startOffsets(devices: ReadonlyArray<Pick<DeviceConfig, 'assetId' | 'pollIntervalMs'>>): Map<string, number> {
  return new Map(devices.map((d, i) => [d.assetId, Math.floor((i * d.pollIntervalMs) / devices.length)]));
}

interface LinkEntry {
  link: Link;
  fingerprint: string;
  unregister: () => void;
}

interface DeviceEntry {
  device: Device;
  fingerprint: string;
}

export function createModbusAdapter(deps: ModbusAdapterDeps, initial: Config): ModbusAdapter {
  const log = deps.logger.child({ module: 'modbus' });
  const problems = configProblems(initial);
  if (problems.length > 0) throw configError(problems);
  let config = initial;
  let siteId = config.siteId;
  const transport = deps.transport ?? modbusSerialTransport;
  const spread = deps.spreadStarts !== false;
  const links = new Map<string, LinkEntry>();
  const devices = new Map<string, DeviceEntry>();
  /** Telemetry sequence per asset: kept when a device is restarted by a configuration change. */
  const seq = new Map<string, number>();
  let sub: Subscription | undefined;
  let heartbeat: TimerHandle | undefined;
  let started = false;
  let closed = false;
  let changing: Promise<void> = Promise.resolve();

  // messagesOut is counted by the bus, once per message actually sent.
  const publish = (what: string, p: Promise<unknown>): void => {
    p.then(
      () => undefined,
      (err: unknown) => {
        deps.metrics.recordError(err);
        log.warn(`${what} not published`, { err: errorMessage(err) });
      },
    );
  };

  const publishStatus = (assetId: string, s: DeviceStatusUpdate, beat: boolean): void => {
    publish(
      'device status',
      deps.bus.publish(topics.deviceStatus(siteId, assetId), {
        schemaVersion: CONTRACT_VERSION,
        siteId,
        assetId,
        ts: deps.clock.now(),
        state: s.state,
        lastSeen: s.lastSeen,
        consecutiveFailures: s.consecutiveFailures,
        message: s.message,
        ...(s.models.length > 0 ? { models: s.models } : {}),
        ...(beat ? { heartbeat: true } : {}),
      }),
    );
  };

  /**
   * Status is published on every change; a consumer started later (the Processor learns the
   * site's assets from device status) would not hear of a device that never changes. So every
   * device's current status is repeated on a heartbeat, flagged, for those that record changes.
   */
  const beat = (): void => {
    for (const [assetId, e] of devices) {
      const s = e.device.currentStatus();
      if (s) publishStatus(assetId, s, true);
    }
  };

  const startHeartbeat = (): void => {
    deps.clock.clearInterval(heartbeat);
    heartbeat = config.statusHeartbeatMs > 0 ? deps.clock.setInterval(beat, config.statusHeartbeatMs) : undefined;
  };

  /** The link of a connection (a serial bus, or a TCP endpoint such as a TCP-to-RTU gateway), made on first use. */
  const linkFor = (c: Config, conn: ResolvedConnection): Link => {
    const key = linkKey(conn);
    const have = links.get(key);
    if (have) return have.link;
    const link = new Link(key, conn, transport, deps.clock, { reconnectInitialMs: c.reconnectInitialMs, reconnectMaxMs: c.reconnectMaxMs, maxConnections: maxConnectionsFor(c, conn), ...(deps.random ? { random: deps.random } : {}) });
    links.set(key, { link, fingerprint: linkFingerprint(c, conn), unregister: deps.metrics.registerQueue(`link:${key}`, () => link.queued) });
    return link;
  };

  const closeLink = async (key: string): Promise<void> => {
    const e = links.get(key);
    if (!e) return;
    links.delete(key);
    e.unregister();
    await e.link.close();
  };

  const addDevice = (c: Config, d: DeviceConfig): Device => {
    const assetId = d.assetId;
    const device = new Device(
      {
        assetId,
        unitId: d.unitId,
        pollIntervalMs: d.pollIntervalMs,
        timeoutMs: d.timeoutMs ?? c.defaultTimeoutMs,
        offlineAfterFailures: c.offlineAfterFailures,
        rediscoverIntervalMs: c.rediscoverIntervalMs,
        maxPendingWrites: c.maxPendingWrites,
        staticRepeatMs: () => config.statusHeartbeatMs,
      },
      linkFor(c, resolveConnection(d.connection)),
      profileFor(d, c),
      deps.clock,
      {
        telemetry: (ts: number, points: Record<string, Point>) => {
          const n = (seq.get(assetId) ?? 0) + 1;
          seq.set(assetId, n);
          deps.metrics.incIn();
          publish('telemetry', deps.bus.publish(topics.rawTelemetry(siteId, assetId), { schemaVersion: CONTRACT_VERSION, siteId, assetId, ts, seq: n, points }));
        },
        status: (s) => publishStatus(assetId, s, false),
        error: (err) => deps.metrics.recordError(err),
        cycle: (ms) => deps.metrics.observeLatency(ms),
        overrun: () => deps.metrics.drop('poll_overrun'),
      },
      log.child({ assetId }),
    );
    devices.set(assetId, { device, fingerprint: deviceFingerprint(c, d) });
    return device;
  };

  for (const d of enabled(config)) addDevice(config, d);

  const commands = new CommandMemory(deps.clock, { maxIds: config.rememberCommandIds, maxAgeMs: config.rememberCommandsMs, maxCommandAgeMs: config.maxCommandAgeMs });
  const commandContext: CommandContext = {
    memory: commands,
    clock: deps.clock,
    log,
    metrics: deps.metrics,
    siteId: () => siteId,
    device: (assetId) => devices.get(assetId)?.device,
    publish: (r: ControlResult, repeat: boolean) => {
      log.info(repeat ? 'repeated command answered from memory' : 'control result', { assetId: r.assetId, commandId: r.commandId, status: r.status, message: r.message });
      publish('control result', deps.bus.publish(topics.controlResult(siteId, r.assetId), r));
    },
  };

  const subscribe = async (): Promise<void> => {
    sub = await deps.bus.subscribe(filters.controlCommand(siteId), (cmd) => {
      deps.metrics.incIn();
      handleCommand(commandContext, cmd).catch((err: unknown) => {
        deps.metrics.recordError(err);
        log.error('control command failed', { err: errorMessage(err), commandId: cmd.commandId });
      });
    });
  };

  const warnUnusedEndpoints = (): void => {
    for (const k of Object.keys(config.endpoints)) {
      const e = parseEndpoint(k);
      if (e && !links.has(`tcp:${endpointKey(e.host, e.port)}`)) log.warn('endpoints entry matches no device connection (keys are host:port as the devices spell host)', { endpoint: k });
    }
  };

  /** Apply a validated configuration change in place (see the file comment). */
  const apply = async (next: Config): Promise<void> => {
    if (closed) return;
    const p = configProblems(next);
    if (p.length > 0) throw configError(p);
    const siteChanged = next.siteId !== siteId;
    const want = new Map(enabled(next).map((d) => [d.assetId, d]));
    const fingerprints = new Map([...want].map(([id, d]) => [id, deviceFingerprint(next, d)]));
    const stop = [...devices].filter(([id, e]) => siteChanged || fingerprints.get(id) !== e.fingerprint).map(([id]) => id);
    // Stop what goes or changes, in parallel (each waits for a poll in flight); the rest polls on.
    // A command arriving meanwhile finds the stopped device and is answered `failed`.
    await Promise.all(stop.map((id) => devices.get(id)?.device.close('the device is being reconfigured')));
    for (const id of stop) {
      devices.delete(id);
      if (!want.has(id) || siteChanged) seq.delete(id);
    }
    // A link is kept while a device of the new configuration uses it as it is.
    const nextLinks = new Map<string, string>();
    for (const d of want.values()) {
      const conn = resolveConnection(d.connection);
      nextLinks.set(linkKey(conn), linkFingerprint(next, conn));
    }
    const retired = [...links].filter(([key, e]) => nextLinks.get(key) !== e.fingerprint).map(([key]) => key);
    await Promise.all(retired.map(closeLink));
    if (siteChanged) {
      await sub?.close().catch(() => undefined);
      sub = undefined;
      siteId = next.siteId;
    }
    config = next;
    const added: string[] = [];
    const offsets = startOffsets([...want.values()]);
    for (const d of want.values()) {
      if (devices.has(d.assetId)) continue;
      const device = addDevice(next, d);
      added.push(d.assetId);
      if (started) device.start(spread ? offsets.get(d.assetId) : 0);
    }
    if (started) {
      if (siteChanged) await subscribe();
      startHeartbeat();
    }
    commands.setOptions({ maxIds: next.rememberCommandIds, maxAgeMs: next.rememberCommandsMs, maxCommandAgeMs: next.maxCommandAgeMs });
    warnUnusedEndpoints();
    log.info('configuration applied', {
      removed: stop.filter((id) => !want.has(id)),
      restarted: stop.filter((id) => want.has(id)),
      added: added.filter((id) => !stop.includes(id)),
      kept: devices.size - added.length,
      linksClosed: retired,
    });
  };

  return {
    async start() {
      await subscribe();
      started = true;
      deps.metrics.setConnectionState('connected');
      const offsets = startOffsets(enabled(config));
      for (const [assetId, e] of devices) e.device.start(spread ? offsets.get(assetId) : 0);
      startHeartbeat();
      log.info('polling', { devices: devices.size, links: links.size });
      warnUnusedEndpoints();
    },
    reconfigure(next) {
      // One change at a time, in order.
      const run = changing.then(() => apply(next));
      changing = run.catch(() => undefined);
      return run;
    },
    async close() {
      if (closed) return;
      closed = true;
      deps.clock.clearInterval(heartbeat);
      await changing;
      await sub?.close().catch(() => undefined);
      await Promise.all([...devices.values()].map((e) => e.device.close()));
      await Promise.all([...links.keys()].map(closeLink));
      deps.metrics.setConnectionState('closed');
    },
    healthState(): ComponentState {
      const all = [...devices.values()].map((e) => e.device.stats().state);
      return all.some((s) => s !== 'online') ? 'degraded' : 'running';
    },
    stats: () => [...devices.values()].map((e) => e.device.stats()),
  };
}
