/**
 * GetSecretValue: the secret manager component's IPC operation (aws.greengrass.SecretManager;
 * Greengrass Developer Guide, "Retrieve secret values" and "Secret manager"; the component's
 * SecretManagerService.handleIPCRequest in aws-greengrass-secret-manager).
 *
 * On a device the secret manager component downloads the secrets its `cloudSecrets`
 * configuration lists from AWS Secrets Manager and serves them from an encrypted local copy. Here
 * the secrets are given to the nucleus at start (`createNucleus({ secrets })`, `dcmms-edge nucleus
 * --secrets FILE`: secret id or ARN -> string) and held in memory only. What follows the
 * component:
 *
 * - authorisation first, on the secret id as the request gives it (resource of a policy of service
 *   `aws.greengrass.SecretManager`, operation `aws.greengrass#GetSecretValue` or `*`); a denial is
 *   an UnauthorizedError, whether or not the secret exists, so a component learns nothing of
 *   secrets it may not read;
 * - a secret may be asked for by ARN or by its name (the ARN's `secret:<name>` part, with or without
 *   the six characters Secrets Manager appends to it);
 * - each secret has one version, labelled AWSCURRENT; a `versionId` or `versionStage` other than
 *   that one is a ResourceNotFoundError, as is an unknown secret;
 * - the operation declares only UnauthorizedError, ResourceNotFoundError and ServiceError (the
 *   SDK's model), so a malformed request is a ServiceError;
 * - `refresh` (fetch from the cloud first) is accepted and has nothing to do.
 *
 * Neither a secret's value nor a response is ever logged; the log says who read which secret id.
 */
import { randomUUID } from 'node:crypto';
import type { OperationDef } from '../ipc/types';
import type { NucleusContext } from './context';
import { OP, notFound, optionalString, serviceError, unauthorized } from './common';

export const SECRET_MANAGER_SERVICE = 'aws.greengrass.SecretManager';
const GET_SECRET_VALUE = OP('GetSecretValue');
const CURRENT = 'AWSCURRENT';

/** `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>` -> name (with its suffix). */
const ARN = /^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(.+)$/;

interface Held {
  readonly id: string;
  readonly value: string;
  readonly versionId: string;
}

/** The runtime's secrets: what `createNucleus({ secrets })` was given. */
export class SecretStore {
  private readonly byId = new Map<string, Held>();

  constructor(secrets: Readonly<Record<string, string>> = {}) {
    for (const [id, value] of Object.entries(secrets)) {
      if (id.length === 0) throw new Error('a secret id must not be empty');
      if (typeof value !== 'string') throw new Error(`secret ${id}: the value must be a string`);
      // A random version id per start: nothing about the value can be read from it.
      this.byId.set(id, { id, value, versionId: randomUUID() });
    }
  }

  get size(): number {
    return this.byId.size;
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  /** By id or ARN as given, else by name against the ARNs held (Secrets Manager's friendly names). */
  find(secretId: string): Held | undefined {
    const exact = this.byId.get(secretId);
    if (exact || ARN.test(secretId)) return exact;
    for (const h of this.byId.values()) {
      const name = ARN.exec(h.id)?.[1];
      if (name !== undefined && (name === secretId || (name.length === secretId.length + 7 && name.startsWith(`${secretId}-`)))) return h;
    }
    return undefined;
  }
}

export function secretOperations(ctx: NucleusContext, store: SecretStore): Record<string, OperationDef> {
  return {
    [GET_SECRET_VALUE]: {
      kind: 'unary',
      handler: (caller, req) => {
        const secretId = req.secretId;
        if (typeof secretId !== 'string' || secretId.length === 0) throw serviceError('secretId is required and must be a non-empty string');
        let versionId: string | undefined;
        let versionStage: string | undefined;
        try {
          versionId = optionalString(req, 'versionId');
          versionStage = optionalString(req, 'versionStage');
        } catch (e) {
          throw serviceError((e as Error).message);
        }
        if (!ctx.authorizer.isAuthorized(caller.componentName, SECRET_MANAGER_SERVICE, GET_SECRET_VALUE, secretId)) {
          ctx.logger.warn('secret access denied', { component: caller.componentName, secretId });
          throw unauthorized(caller.componentName, SECRET_MANAGER_SERVICE, GET_SECRET_VALUE, secretId);
        }
        const held = store.find(secretId);
        if (!held) throw notFound(`Secret not found ${secretId}`, 'secret', secretId);
        if (versionId !== undefined && versionId !== held.versionId) throw notFound(`Version Id ${versionId} not found for secret ${secretId}`, 'secret', secretId);
        if (versionStage !== undefined && versionStage !== CURRENT) throw notFound(`Version stage ${versionStage} not found for secret ${secretId}`, 'secret', secretId);
        ctx.logger.info('secret read', { component: caller.componentName, secretId });
        return { secretId: held.id, versionId: held.versionId, versionStage: [CURRENT], secretValue: { secretString: held.value } };
      },
    },
  };
}
