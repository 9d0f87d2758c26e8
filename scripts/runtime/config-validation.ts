/**
 * Configuration validation during deployments (SubscribeToValidateConfigurationUpdates,
 * SendConfigurationValidityReport; Greengrass Developer Guide, "Interact with component
 * configuration"; docs/local-runtime.md "Deployments", step 3).
 *
 * Before merging a deployment's configuration, the nucleus sends each subscribed component of the
 * deployment its proposed configuration and waits up to configurationValidationPolicy
 * .timeoutInSeconds (default 30) for a report. A REJECTED report fails the deployment with the
 * component's message; silence within the timeout counts as acceptance.
 */
import type { Logger } from '../../components/lib/logger';
import type { IpcEventStream } from './ipc/types';
import { ComponentStreams } from './component-streams';

const EVENT = 'aws.greengrass#ValidateConfigurationUpdateEvents';

export class ReportError extends Error {}

interface Pending {
  deploymentId: string;
  awaiting: Set<string>;
  rejected?: { component: string; message: string };
  done: () => void;
}

export type ValidationResult = { ok: true } | { ok: false; component: string; message: string };

export class ConfigValidation {
  private readonly subscribers = new ComponentStreams();
  private pending: Pending | undefined;

  constructor(private readonly logger: Logger) {}

  subscribe(component: string, stream: IpcEventStream): () => void {
    return this.subscribers.add(component, stream, (gone) => this.settle(gone));
  }

  report(component: string, deploymentId: string, status: 'ACCEPTED' | 'REJECTED', message?: string): void {
    const p = this.pending;
    if (!p || p.deploymentId !== deploymentId || !p.awaiting.has(component)) {
      throw new ReportError(`No configuration validation for deployment ${deploymentId} is waiting for ${component}`);
    }
    if (status === 'REJECTED' && !p.rejected) {
      p.rejected = { component, message: message ?? 'configuration rejected' };
    }
    this.logger.info('configuration validity report', { component, deploymentId, status, message });
    this.settle(component);
  }

  private settle(component: string): void {
    const p = this.pending;
    if (!p || !p.awaiting.delete(component)) return;
    if (p.awaiting.size === 0 || p.rejected) p.done();
  }

  /** proposed: component -> the configuration it would have after the merge. */
  validate(deploymentId: string, proposed: Map<string, Record<string, unknown>>, timeoutMs: number): Promise<ValidationResult> {
    const targets = [...proposed.keys()].filter((c) => this.subscribers.has(c));
    if (targets.length === 0) return Promise.resolve({ ok: true });
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const p: Pending = {
        deploymentId,
        awaiting: new Set(targets),
        done: () => {
          if (timer) clearTimeout(timer);
          this.pending = undefined;
          resolve(p.rejected ? { ok: false, ...p.rejected } : { ok: true });
        },
      };
      this.pending = p;
      timer = setTimeout(p.done, timeoutMs);
      for (const c of targets) {
        this.subscribers.send(EVENT, { validateConfigurationUpdateEvent: { configuration: proposed.get(c), deploymentId } }, c);
      }
    });
  }
}
