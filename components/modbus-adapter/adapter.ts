/**
 * com.dcmms.edge.ModbusAdapter: owns every Modbus connection of the site (DESIGN.md), polls the
 * configured devices, publishes one raw telemetry message per poll and device status changes, and
 * executes control commands for LocalControl.
 *
 * Topics (all from the contract): telemetry `site/{siteId}/scada/{assetId}/telemetry`, device
 * status `site/{siteId}/devices/{assetId}/status`, commands in on
 * `site/{siteId}/control/+/command`, results out on `site/{siteId}/control/{assetId}/result`.
 */
import type { Bus, Subscription } from '../lib/bus-types';
import type { Clock, TimerHandle } from '../lib/clock';
import type { ComponentInstance } from '../lib/component';
import { CONTRACT_VERSION, filters, topics, type ComponentState, type ControlCommand, type ControlResult, type Point } from '../lib/contract';
import { ConfigError, InputError, errorMessage } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../lib/metrics';
import { CommandMemory } from './commands';
import { configError, configProblems, endpointKey, linkKey, maxConnectionsFor, parseEndpoint, resolveConnection, type DeviceConfig, type ModbusAdapterConfig } from './config';
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
}

export interface ModbusAdapter extends ComponentInstance<ModbusAdapterConfig> {
  stats(): DeviceStats[];
}

function profileFor(d: DeviceConfig, config: Readonly<ModbusAdapterConfig>): Profile {
  const maxRegisters = d.maxRegistersPerRead ?? 125;
  if (d.profile.type === 'sunspec') {
    return sunspecProfile({ maxRegisters, ...(d.profile.baseAddress !== undefined ? { baseAddress: d.profile.baseAddress } : {}), ...(d.profile.models ? { models: d.profile.models } : {}) });
  }
  const map = config.registerMaps[d.profile.map];
  if (!map) throw new ConfigError(`devices.${d.assetId}.profile.map`, `register map '${d.profile.map}' is not defined`);
  return registerMapProfile(map, { maxRegisters, maxGap: d.maxGapRegisters ?? 0 });
}

export function createModbusAdapter(deps: ModbusAdapterDeps, config: Readonly<ModbusAdapterConfig>): ModbusAdapter {
  const log = deps.logger.child({ module: 'modbus' });
  const problems = configProblems(config);
  if (problems.length > 0) throw configError(problems);
  const siteId = config.siteId;
  const transport = deps.transport ?? modbusSerialTransport;
  const links = new Map<string, Link>();
  const devices = new Map<string, Device>();
  const seq = new Map<string, number>();
  const unregister: Array<() => void> = [];
  let sub: Subscription | undefined;
  let closed = false;

  const publish = (what: string, p: Promise<unknown>): void => {
    p.then(
      () => deps.metrics.incOut(),
      (err: unknown) => {
        deps.metrics.recordError(err);
        log.warn(`${what} not published`, { err: errorMessage(err) });
      },
    );
  };

  const publishStatus = (assetId: string, s: DeviceStatusUpdate, heartbeat: boolean): void => {
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
        ...(heartbeat ? { heartbeat: true } : {}),
      }),
    );
  };

  /**
   * Status is published on every change; a consumer started later (the Processor learns the
   * site's assets from device status) would not hear of a device that never changes. So every
   * device's current status is repeated on a heartbeat, flagged, for those that record changes.
   */
  let heartbeat: TimerHandle | undefined;
  const beat = (): void => {
    for (const [assetId, d] of devices) {
      const s = d.currentStatus();
      if (s) publishStatus(assetId, s, true);
    }
  };

  for (const d of config.devices) {
    if (d.enabled === false) continue;
    const conn = resolveConnection(d.connection);
    // The devices of one serial bus, or of one TCP endpoint (a TCP-to-RTU gateway), share a link.
    const key = linkKey(conn);
    let link = links.get(key);
    if (!link) {
      link = new Link(key, conn, transport, deps.clock, { reconnectInitialMs: config.reconnectInitialMs, reconnectMaxMs: config.reconnectMaxMs, maxConnections: maxConnectionsFor(config, conn), ...(deps.random ? { random: deps.random } : {}) });
      links.set(key, link);
      const l = link;
      unregister.push(deps.metrics.registerQueue(`link:${key}`, () => l.queued));
    }
    const assetId = d.assetId;
    const device = new Device(
      {
        assetId,
        unitId: d.unitId,
        pollIntervalMs: d.pollIntervalMs,
        timeoutMs: d.timeoutMs ?? config.defaultTimeoutMs,
        offlineAfterFailures: config.offlineAfterFailures,
        rediscoverIntervalMs: config.rediscoverIntervalMs,
        maxPendingWrites: config.maxPendingWrites,
      },
      link,
      profileFor(d, config),
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
    devices.set(assetId, device);
  }

  const commands = new CommandMemory(deps.clock, { maxIds: config.rememberCommandIds, maxAgeMs: config.rememberCommandsMs, maxCommandAgeMs: config.maxCommandAgeMs });

  const publishResult = (r: ControlResult): void => {
    log.info('control result', { assetId: r.assetId, commandId: r.commandId, status: r.status, message: r.message });
    publish('control result', deps.bus.publish(topics.controlResult(siteId, r.assetId), r));
  };

  const onCommand = async (cmd: ControlCommand): Promise<void> => {
    const device = devices.get(cmd.assetId);
    // Commands for assets another adapter owns are not ours: ignore them quietly.
    if (!device) return;
    if (cmd.siteId !== siteId) throw new InputError('site_mismatch', `command ${cmd.commandId} for site ${cmd.siteId}`);
    const seen = commands.recall(cmd);
    if (seen) {
      // A repeat: answer with the first one's result (when it has one), never execute again.
      if (!seen.sameCommand) log.warn('command id repeated with another action or params; answering with the first one\'s result', { assetId: cmd.assetId, commandId: cmd.commandId });
      const r = await seen.result;
      log.info('repeated command answered from memory', { assetId: cmd.assetId, commandId: cmd.commandId, status: r.status });
      publish('control result', deps.bus.publish(topics.controlResult(siteId, r.assetId), r));
      return;
    }
    const started = deps.clock.now();
    const result = (o: { status: ControlResult['status']; message: string }): ControlResult => ({
      schemaVersion: CONTRACT_VERSION,
      siteId,
      assetId: cmd.assetId,
      commandId: cmd.commandId,
      ts: deps.clock.now(),
      status: o.status,
      message: o.message.slice(0, 500),
      durationMs: deps.clock.now() - started,
    });
    const ticket = commands.admit(cmd);
    if (!ticket.ok) {
      deps.metrics.reject('command_memory_full');
      publishResult(result({ status: 'rejected', message: ticket.reason }));
      return;
    }
    const refusal = commands.judge(cmd);
    const outcome = refusal ? { ...refusal, ran: false } : await device.write(cmd.action, cmd.params, commands.deadline(cmd));
    const r = result(outcome);
    ticket.settle(r, outcome.ran);
    publishResult(r);
  };

  return {
    async start() {
      sub = await deps.bus.subscribe(filters.controlCommand(siteId), (cmd) => {
        deps.metrics.incIn();
        onCommand(cmd).catch((err: unknown) => {
          deps.metrics.recordError(err);
          log.error('control command failed', { err: errorMessage(err), commandId: cmd.commandId });
        });
      });
      deps.metrics.setConnectionState('connected');
      for (const d of devices.values()) d.start();
      if (config.statusHeartbeatMs > 0) heartbeat = deps.clock.setInterval(beat, config.statusHeartbeatMs);
      log.info('polling', { devices: devices.size, links: links.size });
      const used = new Set([...links.keys()]);
      for (const k of Object.keys(config.endpoints)) {
        const e = parseEndpoint(k);
        if (e && !used.has(`tcp:${endpointKey(e.host, e.port)}`)) log.warn('endpoints entry matches no device connection (keys are host:port as the devices spell host)', { endpoint: k });
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      deps.clock.clearInterval(heartbeat);
      await sub?.close().catch(() => undefined);
      await Promise.all([...devices.values()].map((d) => d.close()));
      await Promise.all([...links.values()].map((l) => l.close()));
      for (const u of unregister) u();
      deps.metrics.setConnectionState('closed');
    },
    healthState(): ComponentState {
      const all = [...devices.values()].map((d) => d.stats().state);
      return all.some((s) => s !== 'online') ? 'degraded' : 'running';
    },
    stats: () => [...devices.values()].map((d) => d.stats()),
  };
}
