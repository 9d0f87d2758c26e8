/**
 * Component update notifications and deferral (SubscribeToComponentUpdates, DeferComponentUpdate).
 *
 * Before a deployment changes anything, the nucleus sends every subscriber a preUpdateEvent and
 * waits up to the deployment's componentUpdatePolicy.timeoutInSeconds (default 60) for answers.
 * A component that is mid-way through something it must not be interrupted in (a control action)
 * answers DeferComponentUpdate with recheckAfterMs > 0; the nucleus then waits that long and asks
 * again. recheckAfterMs 0 acknowledges. A component that does not answer within the timeout is
 * taken as agreeing. After the deployment, subscribers get a postUpdateEvent.
 * (nucleus deployment/DeploymentService + lifecyclemanager/UpdateSystemPolicyService; Greengrass
 * Developer Guide, "Interact with component lifecycle".)
 */
import type { Logger } from '../../components/lib/logger';
import type { IpcEventStream } from './ipc/types';
import { ComponentStreams } from './component-streams';

const EVENT = 'aws.greengrass#ComponentUpdatePolicyEvents';

export class DeferError extends Error {
  constructor(readonly kind: 'not-subscribed' | 'no-window', message: string) {
    super(message);
  }
}

interface Round {
  deploymentId: string;
  awaiting: Set<string>;
  maxRecheckMs: number;
  done: () => void;
}

export interface PreUpdateResult {
  /** How many times the update was deferred before it went ahead. */
  deferrals: number;
  /** Components that deferred, with their messages. */
  deferredBy: { component: string; message?: string; recheckAfterMs: number }[];
}

export class ComponentUpdates {
  private readonly subscribers = new ComponentStreams();
  private round: Round | undefined;
  private deferredBy: PreUpdateResult['deferredBy'] = [];

  constructor(private readonly logger: Logger) {}

  subscribe(component: string, stream: IpcEventStream): () => void {
    // A component that goes away no longer holds the update up.
    return this.subscribers.add(component, stream, (gone) => this.answer(gone, 0));
  }

  defer(component: string, deploymentId: string, recheckAfterMs: number, message?: string): void {
    if (!this.subscribers.has(component)) {
      throw new DeferError('not-subscribed', `Component ${component} is not subscribed to component updates`);
    }
    const round = this.round;
    if (!round || round.deploymentId !== deploymentId || !round.awaiting.has(component)) {
      throw new DeferError('no-window', `No pending update ${deploymentId} is waiting for ${component}`);
    }
    if (recheckAfterMs > 0) {
      this.deferredBy.push({ component, message, recheckAfterMs });
      this.logger.info('component deferred update', { component, deploymentId, recheckAfterMs, message });
    }
    this.answer(component, recheckAfterMs);
  }

  private answer(component: string, recheckAfterMs: number): void {
    const round = this.round;
    if (!round || !round.awaiting.delete(component)) return;
    round.maxRecheckMs = Math.max(round.maxRecheckMs, recheckAfterMs);
    if (round.awaiting.size === 0) round.done();
  }

  /**
   * Ask every subscriber, re-asking after the longest deferral until nobody defers. Resolves when
   * the deployment may go ahead. `sleep` is injectable so tests can keep the clock in hand.
   */
  async preUpdate(
    deploymentId: string,
    timeoutMs: number,
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ): Promise<PreUpdateResult> {
    this.deferredBy = [];
    let deferrals = 0;
    for (;;) {
      if (this.subscribers.size === 0) break;
      const maxRecheckMs = await this.askOnce(deploymentId, timeoutMs);
      if (maxRecheckMs <= 0) break;
      deferrals++;
      await sleep(maxRecheckMs);
    }
    return { deferrals, deferredBy: this.deferredBy };
  }

  private askOnce(deploymentId: string, timeoutMs: number): Promise<number> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const round: Round = {
        deploymentId,
        awaiting: new Set(this.subscribers.components()),
        maxRecheckMs: 0,
        done: () => {
          if (timer) clearTimeout(timer);
          this.round = undefined;
          resolve(round.maxRecheckMs);
        },
      };
      this.round = round;
      timer = setTimeout(() => {
        if (round.awaiting.size > 0) {
          this.logger.info('components did not answer the update notice in time; going ahead', {
            deploymentId,
            components: [...round.awaiting],
          });
        }
        round.done();
      }, timeoutMs);
      this.subscribers.send(EVENT, { preUpdateEvent: { deploymentId, isGgcRestarting: false } });
    });
  }

  postUpdate(deploymentId: string): void {
    this.subscribers.send(EVENT, { postUpdateEvent: { deploymentId } });
  }
}
