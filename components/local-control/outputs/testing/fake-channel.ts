/**
 * An in-memory channel for unit tests of the queue, the workers and escalation: records every send
 * with the clock's time, and fails, refuses or hangs when told to.
 */
import type { Clock } from '../../../lib/clock';
import { ChannelError, type Notification, type NotificationChannel, type SendContext } from '../types';

export type FakeBehaviour = 'accept' | 'fail' | 'refuse' | 'hang';

export class FakeChannel implements NotificationChannel {
  readonly sends: Array<{ at: number; notifications: Notification[] }> = [];
  readonly attempts: number[] = [];
  behaviour: FakeBehaviour = 'accept';
  /** Error to fail with (default: a transient ChannelError). */
  failWith: ChannelError = new ChannelError('FAKE_DOWN', 'fake channel down');
  /** Called during a send, before the outcome (e.g. to save progress). */
  during?: (batch: readonly Notification[], ctx: SendContext) => void;
  closed = false;
  private hung: Array<() => void> = [];

  constructor(
    readonly name: string,
    private readonly clock: Clock,
    readonly maxBatch = 1,
    readonly batchIntervalMs = 0,
    readonly type = 'webhook',
  ) {}

  async send(batch: readonly Notification[], ctx: SendContext): Promise<void> {
    this.attempts.push(this.clock.now());
    this.during?.(batch, ctx);
    if (this.behaviour === 'fail') throw this.failWith;
    if (this.behaviour === 'refuse') throw new ChannelError('FAKE_REFUSED', 'fake refusal', { refused: true });
    if (this.behaviour === 'hang') {
      await new Promise<void>((resolve) => this.hung.push(resolve));
      throw new ChannelError('CLOSED', 'closed');
    }
    this.sends.push({ at: this.clock.now(), notifications: [...batch] });
  }

  /** Alarm ids (with the kind for escalations) of every notification accepted, in order. */
  get delivered(): string[] {
    return this.sends.flatMap((s) => s.notifications.map((n) => (n.kind === 'escalation' ? `esc:${n.alarm.alarmId}` : `${n.alarm.alarmId}#${n.alarm.transitionSeq}`)));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.hung.splice(0)) r();
  }
}
