/**
 * Helpers shared by the operation handlers: request field access and the error shapes the
 * nucleus uses. A request payload is `Record<string, unknown>`: nothing in it is trusted.
 */
import { IpcError } from '../ipc/errors';

export const OP = (name: string): string => `aws.greengrass#${name}`;

export function invalid(message: string): IpcError {
  return new IpcError('InvalidArgumentsError', message);
}

export function serviceError(message: string): IpcError {
  return new IpcError('ServiceError', message);
}

export function notFound(message: string, resourceType?: string, resourceName?: string): IpcError {
  return new IpcError('ResourceNotFoundError', message, { resourceType, resourceName });
}

export function unauthorized(component: string, service: string, operation: string, resource: string): IpcError {
  // Wording of authorization/AuthorizationHandler.java, which the nucleus returns for pubsub and config.
  return new IpcError(
    'UnauthorizedError',
    `Principal ${component} is not authorized to perform ${service}:${operation} on resource ${resource}`,
  );
}

export function requireString(req: Record<string, unknown>, key: string, what = key): string {
  const v = req[key];
  if (typeof v !== 'string' || v.length === 0) throw invalid(`${what} is required and must be a non-empty string`);
  return v;
}

export function optionalString(req: Record<string, unknown>, key: string): string | undefined {
  const v = req[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`${key} must be a string`);
  return v;
}

export function stringArray(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw invalid(`${what} must be a list of strings`);
  return v as string[];
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
