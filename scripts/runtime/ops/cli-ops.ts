/**
 * The aws.greengrass.Cli operations (aws-greengrass-cli server/.../CLIEventStreamAgent.java;
 * docs/local-runtime.md "Operation semantics components rely on"). The `dcmms-edge` CLI connects
 * with the token the nucleus writes under <root>/cli_ipc_info, as the Greengrass CLI does;
 * components may call these only with an `aws.greengrass.Cli` policy.
 */
import type { OperationDef, IpcCaller } from '../ipc/types';
import type { DeploymentRequest } from '../deployments';
import type { NucleusContext } from './context';
import { OP, invalid, isPlainObject, notFound, optionalString, requireString, stringArray, unauthorized } from './common';

const SERVICE = 'aws.greengrass.Cli';

function authorize(ctx: NucleusContext, caller: IpcCaller, op: string, resource: string): void {
  if (caller.componentName === ctx.cliPrincipal) return;
  if (!ctx.authorizer.isAuthorized(caller.componentName, SERVICE, op, resource)) {
    throw unauthorized(caller.componentName, SERVICE, op, resource);
  }
}

function parseDeployment(req: Record<string, unknown>): DeploymentRequest {
  const toAdd: Record<string, string> = {};
  if (req.rootComponentVersionsToAdd !== undefined) {
    if (!isPlainObject(req.rootComponentVersionsToAdd)) throw invalid('rootComponentVersionsToAdd must map component names to versions');
    for (const [name, version] of Object.entries(req.rootComponentVersionsToAdd)) {
      if (typeof version !== 'string' || !version) throw invalid(`version of ${name} must be a non-empty string`);
      toAdd[name] = version;
    }
  }
  const configuration: DeploymentRequest['configuration'] = {};
  if (req.componentToConfiguration !== undefined) {
    if (!isPlainObject(req.componentToConfiguration)) throw invalid('componentToConfiguration must be an object');
    for (const [name, update] of Object.entries(req.componentToConfiguration)) {
      if (!isPlainObject(update)) throw invalid(`componentToConfiguration.${name} must be an object with MERGE and/or RESET`);
      const merge = update.MERGE;
      if (merge !== undefined && !isPlainObject(merge)) throw invalid(`componentToConfiguration.${name}.MERGE must be an object`);
      configuration[name] = { merge: merge as Record<string, unknown> | undefined, reset: stringArray(update.RESET, `componentToConfiguration.${name}.RESET`) };
    }
  }
  const policy = req.failureHandlingPolicy;
  if (policy !== undefined && policy !== 'ROLLBACK' && policy !== 'DO_NOTHING') {
    throw invalid('failureHandlingPolicy must be ROLLBACK or DO_NOTHING');
  }
  return {
    rootComponentsToAdd: toAdd,
    rootComponentsToRemove: stringArray(req.rootComponentsToRemove, 'rootComponentsToRemove'),
    configuration,
    recipeDirectoryPath: optionalString(req, 'recipeDirectoryPath'),
    artifactsDirectoryPath: optionalString(req, 'artifactsDirectoryPath'),
    // Local deployments default to DO_NOTHING (deployment/converter/DeploymentDocumentConverter.java).
    failureHandlingPolicy: policy ?? 'DO_NOTHING',
  };
}

function details(ctx: NucleusContext, name: string, withConfig: boolean): Record<string, unknown> {
  const state = ctx.services.state(name);
  const version = ctx.componentVersion(name);
  if (state === undefined || version === undefined) throw notFound(`Component ${name} not found`, 'Component', name);
  const out: Record<string, unknown> = { componentName: name, version, state };
  if (withConfig) out.configuration = ctx.config.document(name);
  return out;
}

export function cliOperations(ctx: NucleusContext): Record<string, OperationDef> {
  return {
    [OP('CreateLocalDeployment')]: {
      kind: 'unary',
      handler: (caller, req) => {
        authorize(ctx, caller, OP('CreateLocalDeployment'), '*');
        return { deploymentId: ctx.deployments.submit(parseDeployment(req)) };
      },
    },
    [OP('GetLocalDeploymentStatus')]: {
      kind: 'unary',
      handler: (caller, req) => {
        authorize(ctx, caller, OP('GetLocalDeploymentStatus'), '*');
        const id = requireString(req, 'deploymentId');
        const deployment = ctx.deployments.status(id);
        if (!deployment) throw notFound(`Cannot find deployment ${id}`, 'LocalDeployment', id);
        return { deployment };
      },
    },
    [OP('ListLocalDeployments')]: {
      kind: 'unary',
      handler: (caller) => {
        authorize(ctx, caller, OP('ListLocalDeployments'), '*');
        return { localDeployments: ctx.deployments.list() };
      },
    },
    [OP('ListComponents')]: {
      kind: 'unary',
      handler: (caller) => {
        authorize(ctx, caller, OP('ListComponents'), '*');
        return { components: ctx.services.list().map((s) => details(ctx, s.name, true)) };
      },
    },
    [OP('GetComponentDetails')]: {
      kind: 'unary',
      handler: (caller, req) => {
        const name = requireString(req, 'componentName');
        authorize(ctx, caller, OP('GetComponentDetails'), name);
        return { componentDetails: details(ctx, name, true) };
      },
    },
    [OP('RestartComponent')]: {
      kind: 'unary',
      handler: (caller, req) => {
        const name = requireString(req, 'componentName');
        authorize(ctx, caller, OP('RestartComponent'), name);
        details(ctx, name, false);
        // An asynchronous trigger: SUCCEEDED means queued (CLIEventStreamAgent).
        const ok = ctx.services.restart(name);
        return ok ? { restartStatus: 'SUCCEEDED' } : { restartStatus: 'FAILED', message: `Could not restart ${name}` };
      },
    },
    [OP('StopComponent')]: {
      kind: 'unary',
      handler: (caller, req) => {
        const name = requireString(req, 'componentName');
        authorize(ctx, caller, OP('StopComponent'), name);
        details(ctx, name, false);
        const ok = ctx.services.stopService(name);
        return ok ? { stopStatus: 'SUCCEEDED' } : { stopStatus: 'FAILED', message: `Could not stop ${name}` };
      },
    },
  };
}
