/**
 * IPC authorization policies (Greengrass Developer Guide, "Authorize components to perform IPC
 * operations"; docs/local-runtime.md "IPC").
 *
 * Facts followed, from aws-greengrass-nucleus `authorization/`:
 * - `accessControl` is `{service: {policyId: {policyDescription?, operations, resources}}}`, an object or a
 *   JSON string (`AuthorizationPolicyParser`); property names are matched case-insensitively (Jackson
 *   ACCEPT_CASE_INSENSITIVE_PROPERTIES). The principal is the declaring component.
 * - a call is allowed if any policy of the caller for that service has the operation (or '*') and a
 *   resource that matches (`AuthorizationHandler.isAuthorized`); an operation not registered for the
 *   service is never allowed.
 * - resources are globs: '*' matches any characters including '/'; `${*}`, `${?}`, `${$}` are literal
 *   escapes; any other `${` sequence and a bare '?' make the resource invalid (`AuthorizationModule.
 *   validateResource`); an empty resource is invalid.
 * - for `aws.greengrass.ipc.mqttproxy` (ResourceLookupPolicy.MQTT_STYLE, `WildcardTrie.matchesMQTT`),
 *   '+' (a whole level) matches one level and '#' (the whole last level) matches the rest, parent level
 *   included ('a/#' allows 'a'); elsewhere '+' and '#' are literal characters.
 *
 * Deviations, chosen for a dev runtime that must report problems rather than hide them:
 * - an invalid resource is dropped with an error, like the nucleus; a policy left without resources,
 *   with missing/unknown operations or for an unknown service is dropped with an error;
 * - a duplicate policy id is reported but the policy is kept (the nucleus drops the whole service's
 *   policy list, which would take access away from every other component too).
 */
import { Logger, silentLogger } from '../../components/lib/logger';

const OP = (name: string): string => `aws.greengrass#${name}`;

/** Service -> operations it registers with the authorization handler ('*' is always accepted too). */
export const SERVICES: Record<string, string[]> = {
  'aws.greengrass.ipc.pubsub': [OP('PublishToTopic'), OP('SubscribeToTopic')],
  'aws.greengrass.ipc.mqttproxy': [OP('PublishToIoTCore'), OP('SubscribeToIoTCore')],
  'aws.greengrass.ipc.lifecycle': [OP('PauseComponent'), OP('ResumeComponent')],
  'aws.greengrass.Cli': [
    OP('GetComponentDetails'),
    OP('ListComponents'),
    OP('RestartComponent'),
    OP('StopComponent'),
    OP('CreateLocalDeployment'),
    OP('GetLocalDeploymentStatus'),
    OP('ListLocalDeployments'),
    OP('CreateDebugPassword'),
  ],
  'aws.greengrass.SecretManager': [OP('GetSecretValue')],
  'aws.greengrass.ShadowManager': [
    OP('GetThingShadow'),
    OP('UpdateThingShadow'),
    OP('DeleteThingShadow'),
    OP('ListNamedShadowsForThing'),
  ],
  'aws.greengrass.ipc.componentmetric': [OP('PutComponentMetric')],
};

const ANY = '*';
/** The one service whose resources are matched MQTT-style (`MqttProxyIPCAgent` / ResourceLookupPolicy). */
const MQTT_STYLE_SERVICE = 'aws.greengrass.ipc.mqttproxy';

export interface Policy {
  policyId: string;
  principal: string;
  service: string;
  operations: string[];
  resources: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Jackson reads policy fields case-insensitively; so do we. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k];
  return undefined;
}

/** Why a resource is invalid, or undefined if it is fine (`AuthorizationModule.validateResource`). */
export function resourceError(resource: string): string | undefined {
  if (resource.length === 0) return 'Resource cannot be empty';
  for (let i = 0; i < resource.length; i++) {
    const c = resource[i];
    if (c === '$' && resource[i + 1] === '{') {
      const escaped = resource[i + 2];
      if (resource[i + 3] !== '}' || escaped === undefined) {
        return 'Resource contains an invalid escape sequence. You can use ${*}, ${$}, or ${?}';
      }
      if (escaped !== '*' && escaped !== '$' && escaped !== '?') {
        return `Resource contains an invalid escape sequence: \${${escaped}}. You can use \${*}, \${$}, or \${?}`;
      }
      i += 3;
      continue;
    }
    if (c === '?') {
      return "Resource contains invalid character: '?'. Use an escape sequence: ${?}. The '?' character isn't supported as a wildcard";
    }
  }
  return undefined;
}

export function parseAccessControl(component: string, accessControl: unknown): { policies: Policy[]; errors: string[] } {
  const policies: Policy[] = [];
  const errors: string[] = [];
  let ac = accessControl;
  if (ac === undefined || ac === null) return { policies, errors };
  if (typeof ac === 'string') {
    try {
      ac = JSON.parse(ac) as unknown;
    } catch (err) {
      errors.push(`${component}: accessControl is not valid JSON: ${(err as Error).message}`);
      return { policies, errors };
    }
  }
  if (!isRecord(ac)) {
    errors.push(`${component}: accessControl must be an object of services`);
    return { policies, errors };
  }
  for (const [service, byId] of Object.entries(ac)) {
    const known = SERVICES[service];
    if (!known) {
      errors.push(`${component}: unknown IPC service '${service}' in accessControl; its policies are ignored`);
      continue;
    }
    if (!isRecord(byId)) {
      errors.push(`${component}: accessControl.${service} must be an object of policies`);
      continue;
    }
    for (const [policyId, raw] of Object.entries(byId)) {
      const where = `${component}: policy '${policyId}' (${service})`;
      if (policyId.length === 0) {
        errors.push(`${component}: a policy of ${service} has an empty policy id`);
        continue;
      }
      if (!isRecord(raw)) {
        errors.push(`${where} must be an object`);
        continue;
      }
      const ops = field(raw, 'operations');
      if (!Array.isArray(ops) || ops.length === 0 || !ops.every((o): o is string => typeof o === 'string')) {
        errors.push(`${where}: operations are missing or invalid`);
        continue;
      }
      const unknownOps = ops.filter((o) => o !== ANY && !known.includes(o));
      if (unknownOps.length > 0) {
        errors.push(`${where}: operation(s) ${unknownOps.join(', ')} not registered for ${service}`);
        continue;
      }
      const res = field(raw, 'resources');
      if (!Array.isArray(res) || res.length === 0) {
        errors.push(`${where}: resources are missing or empty`);
        continue;
      }
      const resources: string[] = [];
      for (const r of res) {
        if (typeof r !== 'string') {
          errors.push(`${where}: resource ${JSON.stringify(r)} is not a string`);
          continue;
        }
        const why = resourceError(r);
        if (why) errors.push(`${where}: resource '${r}' ignored: ${why}`);
        else resources.push(r);
      }
      if (resources.length === 0) {
        errors.push(`${where}: no valid resources; policy ignored`);
        continue;
      }
      policies.push({ policyId, principal: component, service, operations: [...new Set(ops)], resources: [...new Set(resources)] });
    }
  }
  return { policies, errors };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Compiles one (already validated) resource to a regex source. STANDARD: '*' is the only wildcard.
 * MQTT_STYLE: also '+' and '#' where their usage is valid (`WildcardTrie.add`): '+' alone, at the
 * start followed by '/', or between '/'s or at the end after '/'; '#' as the whole resource or last
 * after '/'. Anywhere else they are literal.
 */
function resourceToRegex(resource: string, mqttStyle: boolean): string {
  let out = '';
  const n = resource.length;
  for (let i = 0; i < n; i++) {
    const c = resource[i];
    if (c === '$' && resource[i + 1] === '{') {
      out += escapeRegex(resource[i + 2]);
      i += 3;
    } else if (c === '*') {
      out += '[\\s\\S]*';
    } else if (mqttStyle && c === '+' && (i === 0 || resource[i - 1] === '/') && (i === n - 1 || resource[i + 1] === '/')) {
      out += '[^/]*';
    } else if (mqttStyle && c === '#' && i === n - 1 && (i === 0 || resource[i - 1] === '/')) {
      if (i === 0) {
        out += '[\\s\\S]*';
      } else {
        // 'a/#' matches 'a', 'a/' and anything below: drop the '/' we already emitted and make it optional.
        out = out.slice(0, -1) + '(?:/[\\s\\S]*)?';
      }
    } else {
      out += escapeRegex(c);
    }
  }
  return out;
}

const CACHE_LIMIT = 4096;

/** All resources one principal may use for one service operation, compiled once. */
class Matcher {
  private readonly all: boolean;
  private readonly literals = new Set<string>();
  private readonly regex: RegExp | undefined;
  private readonly cache = new Map<string, boolean>();

  constructor(resources: string[], mqttStyle: boolean) {
    const patterns: string[] = [];
    let all = false;
    for (const r of resources) {
      if (r === ANY || (mqttStyle && r === '#')) all = true;
      else if (/[*$]/.test(r) || (mqttStyle && /[+#]/.test(r))) patterns.push(resourceToRegex(r, mqttStyle));
      else this.literals.add(r);
    }
    this.all = all;
    this.regex = patterns.length > 0 ? new RegExp(`^(?:${patterns.join('|')})$`) : undefined;
  }

  matches(resource: string): boolean {
    if (this.all || this.literals.has(resource)) return true;
    if (!this.regex) return false;
    const hit = this.cache.get(resource);
    if (hit !== undefined) return hit;
    const result = this.regex.test(resource);
    // Bounded: topics with ids in them would otherwise grow the cache forever.
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(resource, result);
    return result;
  }
}

export class Authorizer {
  private readonly byComponent = new Map<string, Policy[]>();
  /** `${service}\0${principal}\0${operation}` -> matcher; rebuilt lazily after a policy change. */
  private readonly matchers = new Map<string, Matcher | null>();

  constructor(private readonly logger: Logger = silentLogger) {}

  /** Replaces the component's policies; returns (and logs) the problems found, never throws. */
  setComponentPolicies(component: string, accessControl: unknown): string[] {
    const { policies, errors } = parseAccessControl(component, accessControl);
    const ids = new Map<string, string>();
    for (const [other, list] of this.byComponent) {
      if (other === component) continue;
      for (const p of list) ids.set(p.policyId, other);
    }
    const own = new Set<string>();
    for (const p of policies) {
      const owner = ids.get(p.policyId);
      if (owner !== undefined) {
        errors.push(`${component}: policy id '${p.policyId}' is also used by ${owner}; policy ids must be unique across components`);
      } else if (own.has(p.policyId)) {
        errors.push(`${component}: policy id '${p.policyId}' is used for more than one service`);
      }
      own.add(p.policyId);
    }
    if (policies.length > 0) this.byComponent.set(component, policies);
    else this.byComponent.delete(component);
    this.invalidate(component);
    for (const e of errors) this.logger.error('invalid authorization policy', { component, error: e });
    return errors;
  }

  removeComponent(component: string): void {
    this.byComponent.delete(component);
    this.invalidate(component);
  }

  /** The policies currently in force for a component (for diagnostics and tooling). */
  policiesOf(component: string): Policy[] {
    return (this.byComponent.get(component) ?? []).map((p) => ({ ...p, operations: [...p.operations], resources: [...p.resources] }));
  }

  isAuthorized(component: string, service: string, operation: string, resource: string): boolean {
    const ops = SERVICES[service];
    if (!ops || !ops.includes(operation)) return false;
    const key = `${service}\0${component}\0${operation}`;
    let m = this.matchers.get(key);
    if (m === undefined) {
      m = this.compile(component, service, operation);
      this.matchers.set(key, m);
    }
    return m !== null && m.matches(resource);
  }

  private compile(component: string, service: string, operation: string): Matcher | null {
    const resources: string[] = [];
    for (const p of this.byComponent.get(component) ?? []) {
      if (p.service !== service) continue;
      if (!p.operations.includes(operation) && !p.operations.includes(ANY)) continue;
      resources.push(...p.resources);
    }
    return resources.length > 0 ? new Matcher(resources, service === MQTT_STYLE_SERVICE) : null;
  }

  private invalidate(component: string): void {
    for (const key of this.matchers.keys()) {
      if (key.split('\0')[1] === component) this.matchers.delete(key);
    }
  }
}
