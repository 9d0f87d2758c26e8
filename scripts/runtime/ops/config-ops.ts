/**
 * Configuration operations (builtin/services/configstore/ConfigStoreIPCEventStreamAgent.java;
 * Greengrass Developer Guide, "Interact with component configuration": GetConfiguration /
 * UpdateConfiguration / SubscribeToConfigurationUpdate, and configuration validation). None needs a
 * policy; updates apply to the caller's own configuration only.
 */
import type { OperationDef } from '../ipc/types';
import { IpcError } from '../ipc/errors';
import { ConfigConflictError } from '../config-store';
import { ReportError } from '../config-validation';
import type { NucleusContext } from './context';
import { OP, invalid, isPlainObject, notFound, optionalString, requireString, serviceError, stringArray } from './common';

const CONFIG_EVENT = OP('ConfigurationUpdateEvents');

function targetComponent(ctx: NucleusContext, callerName: string, req: Record<string, unknown>): string {
  const name = optionalString(req, 'componentName') ?? callerName;
  if (!ctx.config.has(name)) throw notFound(`Key not found`, 'Component', name);
  return name;
}

export function configOperations(ctx: NucleusContext): Record<string, OperationDef> {
  return {
    [OP('GetConfiguration')]: {
      kind: 'unary',
      handler: (caller, req) => {
        const componentName = targetComponent(ctx, caller.componentName, req);
        const keyPath = stringArray(req.keyPath, 'keyPath');
        const node = ctx.config.read(componentName, keyPath);
        if (!node.found) throw notFound('Key not found', 'KeyPath', keyPath.join('/'));
        // A container comes back as itself; a leaf as {lastKey: value} (the Java nucleus and
        // Greengrass nucleus lite agree).
        const value = isPlainObject(node.value) || keyPath.length === 0 ? node.value : { [keyPath[keyPath.length - 1]!]: node.value };
        return { componentName, value };
      },
    },
    [OP('UpdateConfiguration')]: {
      kind: 'unary',
      handler: (caller, req) => {
        const keyPath = stringArray(req.keyPath, 'keyPath');
        if (typeof req.timestamp !== 'number' || !Number.isFinite(req.timestamp)) {
          throw invalid('timestamp is required (seconds since the epoch)');
        }
        if (!isPlainObject(req.valueToMerge)) throw invalid('valueToMerge is required and must be an object');
        if (keyPath[0] === 'accessControl' || (keyPath.length === 0 && 'accessControl' in req.valueToMerge)) {
          throw invalid('Config update is not allowed for following field [accessControl]');
        }
        if (!ctx.config.has(caller.componentName)) throw notFound('Key not found', 'Component', caller.componentName);
        try {
          ctx.config.update(caller.componentName, keyPath, req.valueToMerge, Math.round(req.timestamp * 1000));
        } catch (e) {
          if (e instanceof ConfigConflictError) throw new IpcError('FailedUpdateConditionCheckError', e.message);
          throw e;
        }
        return {};
      },
    },
    [OP('SubscribeToConfigurationUpdate')]: {
      kind: 'stream',
      handler: (caller, req, stream) => {
        const componentName = targetComponent(ctx, caller.componentName, req);
        const keyPath = stringArray(req.keyPath, 'keyPath');
        // One event per changed node, no batching, no initial event (as the nucleus does).
        const off = ctx.config.subscribe(componentName, keyPath, (changed) =>
          stream.send(CONFIG_EVENT, { configurationUpdateEvent: { componentName, keyPath: changed } }),
        );
        stream.onClose(off);
        return {};
      },
    },
    [OP('SubscribeToValidateConfigurationUpdates')]: {
      kind: 'stream',
      handler: (caller, _req, stream) => {
        stream.onClose(ctx.validation.subscribe(caller.componentName, stream));
        return {};
      },
    },
    [OP('SendConfigurationValidityReport')]: {
      kind: 'unary',
      handler: (caller, req) => {
        const report = req.configurationValidityReport;
        if (!isPlainObject(report)) throw invalid('configurationValidityReport is required');
        const status = report.status;
        if (status !== 'ACCEPTED' && status !== 'REJECTED') throw invalid('status must be ACCEPTED or REJECTED');
        const deploymentId = requireString(report, 'deploymentId');
        const message = optionalString(report, 'message');
        try {
          ctx.validation.report(caller.componentName, deploymentId, status, message);
        } catch (e) {
          if (e instanceof ReportError) throw serviceError(e.message);
          throw e;
        }
        return {};
      },
    },
  };
}
