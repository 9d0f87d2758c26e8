/**
 * Lifecycle operations of a component about itself (builtin/services/lifecycle/
 * LifecycleIPCEventStreamAgent.java; Greengrass Developer Guide, "Interact with component
 * lifecycle"): UpdateState,
 * SubscribeToComponentUpdates, DeferComponentUpdate; and Stream Manager's
 * ValidateAuthorizationToken. None needs a policy.
 */
import type { OperationDef } from '../ipc/types';
import { IpcError } from '../ipc/errors';
import { DeferError } from '../component-updates';
import type { NucleusContext } from './context';
import { OP, invalid, notFound, optionalString, requireString, serviceError } from './common';

const STREAM_MANAGER = 'aws.greengrass.StreamManager';

export function lifecycleOperations(ctx: NucleusContext): Record<string, OperationDef> {
  return {
    [OP('UpdateState')]: {
      kind: 'unary',
      handler: (caller, req) => {
        const state = req.state;
        if (state !== 'RUNNING' && state !== 'ERRORED') throw invalid('state must be RUNNING or ERRORED');
        if (ctx.services.state(caller.componentName) === undefined) {
          throw notFound(`Component ${caller.componentName} not found`, 'Component', caller.componentName);
        }
        // Reports the lifecycle does not honour are ignored (and logged by the service manager)
        // but still answered (Lifecycle.java).
        ctx.services.reportState(caller.componentName, state);
        return {};
      },
    },
    [OP('SubscribeToComponentUpdates')]: {
      kind: 'stream',
      handler: (caller, _req, stream) => {
        if (ctx.services.state(caller.componentName) === undefined) {
          throw notFound(`Component ${caller.componentName} not found`, 'Component', caller.componentName);
        }
        stream.onClose(ctx.updates.subscribe(caller.componentName, stream));
        return {};
      },
    },
    [OP('DeferComponentUpdate')]: {
      kind: 'unary',
      handler: (caller, req) => {
        const deploymentId = requireString(req, 'deploymentId');
        const message = optionalString(req, 'message');
        const recheck = req.recheckAfterMs ?? 0;
        if (typeof recheck !== 'number' || !Number.isFinite(recheck) || recheck < 0) {
          throw invalid('recheckAfterMs must be a non-negative number');
        }
        try {
          ctx.updates.defer(caller.componentName, deploymentId, recheck, message);
        } catch (e) {
          if (e instanceof DeferError) throw e.kind === 'not-subscribed' ? invalid(e.message) : serviceError(e.message);
          throw e;
        }
        return {};
      },
    },
    [OP('ValidateAuthorizationToken')]: {
      kind: 'unary',
      handler: (caller, req) => {
        // Only Stream Manager may ask (ipc/AuthorizationHandler for ValidateAuthorizationToken).
        if (caller.componentName !== STREAM_MANAGER) {
          throw new IpcError('UnauthorizedError', `${caller.componentName} is not authorized to validate tokens`);
        }
        const token = requireString(req, 'token');
        if (!ctx.tokens.componentFor(token)) throw new IpcError('InvalidTokenError', 'Invalid token used by stream manager when trying to authorize');
        return { isValid: true };
      },
    },
  };
}
