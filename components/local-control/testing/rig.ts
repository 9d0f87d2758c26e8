/**
 * A LocalControl under test (unit tests, the latency measurement): the component on a RecordingBus
 * with a FakeClock and a real SQLite file, plus what the site around it does, played by the rig:
 *
 *  - the ModbusAdapter: answers each control command (succeeded by default; `adapter.answer`
 *    decides per command: a status, or `null` for no answer at all);
 *  - the Processor as an alarm source: raises and clears alarms with its journal fields and
 *    publishes its snapshot every minute, as the real one does (so its alarms stay current);
 *  - telemetry, device status and operator requests, delivered as the bus would.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../lib/clock';
import { validateConfig } from '../../lib/config';
import {
  CONTRACT_VERSION,
  topics,
  type AlarmMessage,
  type ControlCommand,
  type ControlDecision,
  type ControlStatus,
  type DeviceState,
  type OperatorRequest,
  type PointValue,
  type Quality,
  type Severity,
} from '../../lib/contract';
import { silentLogger } from '../../lib/logger';
import { createMetrics, type Metrics } from '../../lib/metrics';
import { FakeClock, settle } from '../../lib/testing/fake-clock';
import { RecordingBus } from '../../lib/testing/recording-bus';
import { localControlConfigSpec, type LocalControlConfig } from '../config';
import { createLocalControl, type LocalControl, type LocalControlDeps } from '../local-control';

export const SITE = 'unit-site';

export interface RigOptions {
  /** Configuration over the defaults (siteId and dbPath are the rig's unless given). */
  config?: Record<string, unknown>;
  /** The database folder (default: a new temporary one, removed by `close`). */
  dir?: string;
  clock?: FakeClock;
  /** Dependencies over the rig's (createOutputs, random...). */
  deps?: Partial<LocalControlDeps>;
}

export type Answer = ControlStatus | null | { status: ControlStatus; message?: string };

export class Rig {
  readonly bus = new RecordingBus();
  readonly clock: FakeClock;
  readonly metrics: Metrics;
  readonly dir: string;
  readonly config: Readonly<LocalControlConfig>;
  lc: LocalControl;
  /** The adapter's answer to a command; default `succeeded`. */
  answer: (cmd: ControlCommand) => Answer = () => 'succeeded';
  /** Commands answered so far (by commandId). */
  private readonly answered = new Set<string>();
  private readonly ownDir: boolean;
  private seq = 0;
  private readonly processorAlarms = new Map<string, AlarmMessage>();
  private snapshotTimer: unknown;

  private readonly deps: Partial<LocalControlDeps>;

  constructor(opts: RigOptions = {}) {
    this.deps = opts.deps ?? {};
    this.clock = opts.clock ?? new FakeClock(Date.UTC(2026, 5, 15, 10, 0, 0));
    this.metrics = createMetrics({ clock: this.clock });
    this.ownDir = opts.dir === undefined;
    this.dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lc-unit-'));
    this.config = validateConfig(localControlConfigSpec, { siteId: SITE, dbPath: path.join(this.dir, 'lc.db'), ...(opts.config ?? {}) });
    this.lc = this.make();
  }

  private make(): LocalControl {
    return createLocalControl(
      // workDir: a relative outputs.queuePath lands in the rig's folder.
      { bus: this.bus, logger: silentLogger, metrics: this.metrics, clock: this.clock as Clock, component: 'local-control', fail: (e) => { throw e; }, random: () => 0.5, workDir: this.dir, ...this.deps },
      this.config,
    );
  }

  static async started(opts: RigOptions = {}): Promise<Rig> {
    const r = new Rig(opts);
    await r.start();
    return r;
  }

  async start(): Promise<void> {
    await this.lc.start();
    this.snapshotTimer = this.clock.setInterval(() => void this.processorSnapshot(), 60000);
    await this.flush();
  }

  /** Stops the component (not the database) and starts a new instance on the same file. */
  async restart(): Promise<void> {
    await this.lc.close();
    this.lc = this.make();
    await this.lc.start();
    await this.flush();
  }

  async close(): Promise<void> {
    this.clock.clearInterval(this.snapshotTimer);
    await this.lc.close();
    if (this.ownDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Lets handlers run and the adapter answer every new command, until nothing more happens. */
  async flush(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await settle();
      const pending = this.commands().filter((c) => !this.answered.has(c.commandId));
      if (pending.length === 0) return;
      for (const c of pending) {
        this.answered.add(c.commandId);
        const a = this.answer(c);
        if (a === null) continue;
        const r = typeof a === 'string' ? { status: a } : a;
        await this.bus.deliver('controlResult', topics.controlResult(SITE, c.assetId), {
          schemaVersion: CONTRACT_VERSION,
          siteId: SITE,
          assetId: c.assetId,
          commandId: c.commandId,
          ts: this.clock.now(),
          status: r.status,
          durationMs: 12,
          ...('message' in r && r.message !== undefined ? { message: r.message } : {}),
        }, { strict: true });
      }
    }
    throw new Error('the rig kept answering commands for 100 rounds');
  }

  /** Moves time on (timers fire, promises settle), answering commands as they come. */
  async advance(ms: number, stepMs = 1000): Promise<void> {
    for (let left = ms; left > 0; left -= stepMs) {
      await this.clock.advanceAsync(Math.min(stepMs, left));
      await this.flush();
    }
  }

  async telemetry(assetId: string, points: Record<string, PointValue | { v: PointValue; q?: Quality }>, opts: { ts?: number } = {}): Promise<void> {
    const ps: Record<string, { v: PointValue; q: Quality }> = {};
    for (const [k, p] of Object.entries(points)) ps[k] = p !== null && typeof p === 'object' ? { v: p.v, q: p.q ?? 'good' } : { v: p, q: 'good' };
    await this.bus.deliver('processedTelemetry', topics.processedTelemetry(SITE, assetId), { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId, ts: opts.ts ?? this.clock.now(), seq: ++this.seq, points: ps }, { strict: true });
    await this.flush();
  }

  /** The Processor raises an alarm (or moves it on); returns it. */
  async raise(assetId: string, type: string, severity: Severity, opts: { point?: string; value?: number; alarmId?: string } = {}): Promise<AlarmMessage> {
    const alarmId = opts.alarmId ?? randomUUID();
    const prev = this.processorAlarms.get(alarmId);
    const a: AlarmMessage = {
      schemaVersion: CONTRACT_VERSION,
      siteId: SITE,
      assetId,
      alarmId,
      type,
      severity,
      state: 'raised',
      ts: this.clock.now(),
      source: 'processor',
      transition: prev ? 'updated' : 'raised',
      transitionSeq: prev ? (prev.transitionSeq ?? 0) + 1 : 0,
      journalId: 'processor-journal',
      sourceSeq: ++this.seq,
      ...(opts.point ? { point: opts.point } : {}),
      ...(opts.value !== undefined ? { value: opts.value } : {}),
    };
    this.processorAlarms.set(alarmId, a);
    await this.bus.deliver('alarms', topics.alarms(SITE, assetId), a, { strict: true });
    await this.flush();
    return a;
  }

  async clear(a: AlarmMessage): Promise<void> {
    const cur = this.processorAlarms.get(a.alarmId) ?? a;
    this.processorAlarms.delete(a.alarmId);
    const c: AlarmMessage = { ...cur, state: 'cleared', transition: 'cleared', transitionSeq: (cur.transitionSeq ?? 0) + 1, ts: this.clock.now(), sourceSeq: ++this.seq };
    await this.bus.deliver('alarms', topics.alarms(SITE, a.assetId), c, { strict: true });
    await this.flush();
  }

  /** The Processor's snapshot of what it holds active (it publishes one every minute). */
  async processorSnapshot(requestedBy?: string): Promise<void> {
    await this.bus.deliver('alarmSnapshot', topics.alarmSnapshot(SITE, 'processor'), {
      schemaVersion: CONTRACT_VERSION,
      siteId: SITE,
      source: 'processor',
      ts: this.clock.now(),
      journalId: 'processor-journal',
      headSeq: this.seq,
      oldestSeq: 1,
      active: [...this.processorAlarms.values()].map((a) => ({ ...a, replayed: true })),
      page: 1,
      pages: 1,
      ...(requestedBy ? { requestedBy } : {}),
    }, { strict: true });
  }

  async status(assetId: string, state: DeviceState, opts: { heartbeat?: boolean; models?: number[] } = {}): Promise<void> {
    await this.bus.deliver('deviceStatus', topics.deviceStatus(SITE, assetId), {
      schemaVersion: CONTRACT_VERSION,
      siteId: SITE,
      assetId,
      ts: this.clock.now(),
      state,
      lastSeen: this.clock.now(),
      consecutiveFailures: state === 'online' ? 0 : 3,
      ...(opts.models ? { models: opts.models } : {}),
      ...(opts.heartbeat ? { heartbeat: true } : {}),
    }, { strict: true });
    await this.flush();
  }

  async operator(action: OperatorRequest['action'], fields: Partial<OperatorRequest> = {}): Promise<OperatorRequest> {
    const req: OperatorRequest = { schemaVersion: CONTRACT_VERSION, siteId: SITE, ts: this.clock.now(), requestId: randomUUID(), operator: 'alice', action, ...fields };
    await this.bus.deliver('operatorRequest', topics.operatorRequest(SITE), req, { strict: true });
    await this.flush();
    return req;
  }

  commands(assetId?: string): ControlCommand[] {
    return this.bus.of<ControlCommand>('controlCommand', assetId);
  }

  decisions(assetId?: string): ControlDecision[] {
    return this.bus.of<ControlDecision>('controlDecision', assetId);
  }

  /** Alarms LocalControl itself published (control_failed). */
  ownAlarms(): AlarmMessage[] {
    return this.bus.of<AlarmMessage>('alarms');
  }
}
