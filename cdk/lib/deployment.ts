/**
 * What a site's deployment carries: the dCMMS bundle (the Site meta component and every component
 * it depends on, each with the site's configuration merged), the AWS-provided components, and the
 * fleet's rollout, abort, timeout and update policies (awsdocs greengrass v2 create-deployments.md;
 * CloudFormation AWS::GreengrassV2::Deployment).
 *
 * Configuration: `configurationUpdate.merge` is a JSON string (max 65,535 characters) merged over
 * the component's configuration on the device. Every dCMMS component gets the site facets (siteId,
 * timeZone, devices, thresholds) plus that site's `componentConfig[<name>]`; components ignore
 * keys their schema does not name (components/lib/config.ts). Where the component's schema is
 * known (components/registry.ts), the result is validated here, so a bad site entry fails the
 * synth instead of sending a device into ERRORED and a rollback.
 */
import { Token } from 'aws-cdk-lib';
import { CONFIG_SPECS } from '../../components/registry';
import { SITE_COMPONENT_NAME, isComponentName } from '../../components/lib/contract';
import { mergeConfig, validateConfig } from '../../components/lib/config';
import { secretAccessControl, type SecretNaming } from '../../components/local-control/notify-options';
import { names, type AwsComponent, type FleetConfig, type SiteConfig } from './config';
import type { PublishedComponent } from './components';
import type { LockFile } from './lock';
import { lockKey } from './lock';
import { LOCAL_CONTROL_COMPONENT, SECRET_MANAGER_COMPONENT, SECRET_POLICY_RESET, secretManagerMerge, siteSecrets, type SiteSecrets } from './secrets';
import { switchVersion, UPLINK_SM_SWITCH, uplinkStreamManagerConfig } from './stream-manager';

export const MAX_MERGE_CHARS = 65535;

export interface BundleMember {
  readonly name: string;
  /** Plain version string, or the published resource's attribute (creation order). */
  readonly version: string;
  readonly published?: PublishedComponent;
}

export class DeploymentConfigError extends Error {}

const EXACT = /^=?\s*(\d+\.\d+\.\d+)$/;

/**
 * The bundle to deploy: the version just built, or an older recorded one (rollback/pinning).
 * An older one is deployed by version string; its component versions were retained in AWS.
 */
export function resolveBundle(published: ReadonlyMap<string, PublishedComponent>, lock: LockFile, wanted: string | undefined): BundleMember[] {
  const site = published.get(SITE_COMPONENT_NAME);
  if (!site) throw new DeploymentConfigError(`the build has no ${SITE_COMPONENT_NAME} recipe: nothing to deploy`);
  const version = wanted ?? site.version;
  if (version === site.version) {
    return [site.name, ...Object.keys(site.dependencies)].map((name) => {
      const p = published.get(name);
      if (!p) throw new DeploymentConfigError(`${SITE_COMPONENT_NAME}@${version} depends on ${name}, which the build did not produce`);
      return { name, version: p.resource.attrComponentVersion, published: p };
    });
  }
  const entry = lock.components[lockKey(SITE_COMPONENT_NAME, version)];
  if (!entry) throw new DeploymentConfigError(`bundleVersion ${version} is neither the built version (${site.version}) nor recorded in the lock file`);
  const members: BundleMember[] = [{ name: SITE_COMPONENT_NAME, version }];
  for (const [name, req] of Object.entries(entry.dependencies)) {
    const m = EXACT.exec(req);
    if (!m?.[1]) throw new DeploymentConfigError(`${SITE_COMPONENT_NAME}@${version} requires ${name} ${req}; pinning needs exact versions`);
    members.push({ name, version: m[1] });
  }
  return members;
}

/**
 * The site facets merged into every dCMMS component. `assets` (every device's assetId) declares the
 * site's assets to the Processor, so their telemetry is accepted whatever order the components
 * start in (docs/processor.md "Start-up order").
 */
export function siteFacets(site: SiteConfig): Record<string, unknown> {
  const assets = site.devices.map((d) => d['assetId']).filter((a): a is string => typeof a === 'string');
  return { siteId: site.siteId, timeZone: site.timeZone, devices: site.devices, thresholds: site.thresholds, assets };
}

/**
 * `accessControl` is the nucleus's part of a component's configuration: the IPC and MQTT proxy
 * authorization policies. The recipes carry the least-privilege ones generated from the contract
 * (scripts/build.js); a merge would replace them, so nothing merged from site or fleet configuration
 * may set it. The nucleus matches configuration keys case-insensitively, so every spelling counts.
 * The one policy a deployment adds, LocalControl's GetSecretValue on the secrets it names, is
 * generated here from that configuration (mergeFor), never written in sites.json.
 */
function refuseAccessControl(site: SiteConfig, component: string, merge: Record<string, unknown>): void {
  const key = Object.keys(merge).find((k) => k.toLowerCase() === 'accesscontrol');
  if (key === undefined) return;
  throw new DeploymentConfigError(
    `site ${site.siteId}: configuration for ${component} sets ${key === 'accessControl' ? 'accessControl' : `${key} (accessControl)`}, which would replace the recipe's least-privilege IPC policies generated from the contract; ` +
      `remove it from sites.json componentConfig.${component} (change the contract to change what a component may do)`,
  );
}

export const UPLINK_COMPONENT_NAME = 'com.dcmms.edge.Uplink';

/** What the fleet's stack knows and a device configuration may name: resolved by CloudFormation at deploy time. */
export interface FleetCloud {
  /** The data bucket's name (a reference to the bucket). */
  readonly dataBucketName: string;
  /** The stack's region (AWS::Region): the data bucket's. */
  readonly region: string;
  /** JSON text with those references in it (Stack.toJsonString). */
  readonly toJson: (value: unknown) => string;
}

/**
 * Configuration the fleet sets on a dCMMS component, per component. The Uplink's S3 exporter where
 * the fleet has `uplinkS3Export`: the data bucket and `fleets/<fleet>/` are where the Token Exchange
 * role's per-thing grant is (the exporter adds the thing name), so a site must not change them.
 * On a `streamManager` fleet the Uplink exports through Stream Manager instead (S3 tasks to the same
 * bucket, prefix and keys; SiteWise; Kinesis), with routes naming those exports (stream-manager.ts).
 */
export function fleetComponentConfig(fleet: FleetConfig, cloud: FleetCloud): Record<string, Record<string, unknown>> {
  if (fleet.streamManager) return { [UPLINK_COMPONENT_NAME]: uplinkStreamManagerConfig(fleet, { dataBucketName: cloud.dataBucketName }) };
  if (!fleet.uplinkS3Export) return {};
  return { [UPLINK_COMPONENT_NAME]: { exporters: { s3: { enabled: true, bucket: cloud.dataBucketName, prefix: names.dataPrefix(fleet.name), region: cloud.region } } } };
}

/**
 * Leaves a site may still set under the fleet's configuration: a site on a metered link may turn S3
 * export off, or SiteWise, or route a class elsewhere. Never the bucket, prefix, region or Kinesis
 * stream: the fleet's grants are on exactly those.
 */
const SITE_MAY_OVERRIDE = new Set([
  'exporters.s3.enabled',
  'exporters.streamManager.s3.enabled',
  'exporters.streamManager.sitewise.enabled',
  ...['alarms', 'events', '1m', '15m', '1d', 'health'].map((c) => `routes.${c}`),
]);

function leafPaths(v: unknown, at: string[] = []): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [at.join('.')];
  return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => leafPaths(x, [...at, k]));
}

function valueAt(v: unknown, dotted: string): unknown {
  let cur = v;
  for (const k of dotted.split('.')) cur = cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>)[k] : undefined;
  return cur;
}

function mergeFor(site: SiteConfig, fleet: FleetConfig, cloud: FleetCloud, member: BundleMember, secrets: SiteSecrets): string | undefined {
  if (member.name === SITE_COMPONENT_NAME) return undefined; // meta component: no configuration
  const fromFleet = fleetComponentConfig(fleet, cloud)[member.name] ?? {};
  const fromSite = site.componentConfig?.[member.name] ?? {};
  for (const leaf of leafPaths(fromFleet)) {
    if (!SITE_MAY_OVERRIDE.has(leaf) && valueAt(fromSite, leaf) !== undefined) {
      throw new DeploymentConfigError(
        `site ${site.siteId}: componentConfig.${member.name} sets ${leaf}, which fleet ${fleet.name} sets (${fleet.streamManager ? 'streamManager' : 'uplinkS3Export'}: the data bucket, prefix ${names.dataPrefix(fleet.name)}, the stack's region and the export destinations, where the gateways' grants are); remove it from sites.json`,
      );
    }
  }
  // Site facets, then the fleet's part, then the site's componentConfig: a key the fleet contributes
  // merges deep (the site may add S3 settings), any other replaces (as Greengrass MERGE would not).
  const merge: Record<string, unknown> = { ...siteFacets(site), ...fromFleet };
  for (const [k, v] of Object.entries(fromSite)) merge[k] = k in fromFleet ? mergeConfig(fromFleet[k], v) : v;
  refuseAccessControl(site, member.name, merge);
  const spec = isComponentName(member.name) ? CONFIG_SPECS[member.name] : undefined;
  const recipeConfig = member.published?.recipe['ComponentConfiguration'];
  const defaults = (recipeConfig as { DefaultConfiguration?: unknown } | undefined)?.DefaultConfiguration;
  if (spec && defaults !== undefined) {
    try {
      validateConfig(spec, mergeConfig(defaults, merge));
    } catch (e) {
      throw new DeploymentConfigError(`site ${site.siteId}: configuration for ${member.name} is invalid: ${(e as Error).message}`);
    }
  }
  if (member.name === LOCAL_CONTROL_COMPONENT) {
    // Exactly the policy LocalControl needs for the secrets its merged configuration names
    // (docs/local-control.md "Secrets"): GetSecretValue on those ARNs, nothing when it names none.
    const accessControl = secretAccessControl(merge as SecretNaming);
    const granted = Object.values(accessControl?.[SECRET_MANAGER_COMPONENT] ?? {}).flatMap((p) => p.resources);
    if (JSON.stringify(granted) !== JSON.stringify(secrets.secrets.map((x) => x.arn))) {
      // siteSecrets reads the same keys; a difference would deploy a policy without its secrets.
      throw new DeploymentConfigError(`site ${site.siteId}: ${member.name} would be granted ${JSON.stringify(granted)} but the secrets checked are ${JSON.stringify(secrets.secrets.map((x) => x.arn))}`);
    }
    if (accessControl) merge['accessControl'] = accessControl;
  }
  // With references (bucket name, region) the length is that of their placeholders, which are about
  // as long as what they resolve to (a bucket name is at most 63 characters).
  const json = JSON.stringify(merge);
  if (json.length > MAX_MERGE_CHARS) {
    throw new DeploymentConfigError(`site ${site.siteId}: ${member.name} configuration is ${json.length} characters; Greengrass allows ${MAX_MERGE_CHARS} per component`);
  }
  return Token.isUnresolved(json) ? cloud.toJson(merge) : json;
}

/**
 * The nucleus's MQTT spool on disk (Greengrass developer guide, "Disk spooler"): with the
 * aws.greengrass.DiskSpooler plugin deployed and `mqtt.spooler` selecting it, QoS 1 messages the
 * nucleus accepted while offline (Health's reports, Uplink batches published just before the
 * Uplink's probe saw the outage) survive a reboot of the gateway during the outage; the default
 * in-memory spool loses them.
 */
export function nucleusMerge(fleet: FleetConfig): string {
  return JSON.stringify({ mqtt: { spooler: { storageType: 'Disk', pluginName: 'aws.greengrass.DiskSpooler', maxSizeInBytes: fleet.mqttSpoolMaxBytes } } });
}

export interface ComponentDeploymentSpec {
  readonly componentVersion: string;
  /** `reset` (JSON pointers) is applied on the device before `merge` (Greengrass API Reference, ComponentConfigurationUpdate). */
  readonly configurationUpdate?: { readonly merge: string; readonly reset?: string[] };
}

/** LogManager uploads system and dCMMS component logs to CloudWatch (awsdocs log-manager-component.md). */
function logManagerMerge(fleet: FleetConfig, bundle: readonly BundleMember[]): string {
  const level = fleet.logLevel;
  const perComponent = Object.fromEntries(
    bundle.filter((m) => m.name !== SITE_COMPONENT_NAME).map((m) => [m.name, { minimumLogLevel: level, diskSpaceLimit: '25', diskSpaceLimitUnit: 'MB' }]),
  );
  return JSON.stringify({
    logsUploaderConfiguration: {
      systemLogsConfiguration: { uploadToCloudWatch: 'true', minimumLogLevel: level, diskSpaceLimit: '25', diskSpaceLimitUnit: 'MB' },
      componentLogsConfigurationMap: perComponent,
    },
    periodicUploadIntervalSec: '300',
  });
}

/**
 * The components of a site's deployment. `secrets`: the site's checked notification secrets
 * (siteSecrets; the stack computes them once for every site, to hold it to their region).
 */
export function deploymentComponents(
  fleet: FleetConfig,
  site: SiteConfig,
  bundle: readonly BundleMember[],
  cloud: FleetCloud,
  secrets: SiteSecrets = siteSecrets(site, fleet),
): Record<string, ComponentDeploymentSpec> {
  const out: Record<string, ComponentDeploymentSpec> = {};
  const unknown = Object.keys(site.componentConfig ?? {}).filter((n) => !bundle.some((m) => m.name === n));
  if (unknown.length > 0) throw new DeploymentConfigError(`site ${site.siteId}: componentConfig names components not in the bundle: ${unknown.join(', ')}`);
  for (const m of bundle) {
    const merge = mergeFor(site, fleet, cloud, m, secrets);
    // LocalControl: the secret manager policy is reset on every site, also one that names no
    // secrets (any more), so a policy merged by an earlier revision does not outlive its secrets.
    const reset = m.name === LOCAL_CONTROL_COMPONENT ? { reset: [SECRET_POLICY_RESET] } : {};
    out[m.name] = merge === undefined ? { componentVersion: m.version } : { componentVersion: m.version, configurationUpdate: { merge, ...reset } };
  }
  // The Uplink's published recipe depends on the switch; its version decides whether Stream Manager comes with it (stream-manager.ts).
  if (bundle.some((m) => m.name === UPLINK_COMPONENT_NAME)) out[UPLINK_SM_SWITCH] = { componentVersion: switchVersion(fleet) };
  const aws: AwsComponent[] = ['aws.greengrass.Nucleus', 'aws.greengrass.TokenExchangeService', 'aws.greengrass.LogManager', 'aws.greengrass.DiskSpooler'];
  if (fleet.streamManager) aws.push('aws.greengrass.StreamManager');
  // Only where the site names secrets: a gateway without them runs no secret manager (a nucleus
  // plugin: deploying it, or changing its version, restarts the nucleus once).
  if (secrets.secrets.length > 0) aws.push(SECRET_MANAGER_COMPONENT);
  const merges: Partial<Record<AwsComponent, string>> = {
    'aws.greengrass.Nucleus': nucleusMerge(fleet),
    'aws.greengrass.LogManager': logManagerMerge(fleet, bundle),
    [SECRET_MANAGER_COMPONENT]: secretManagerMerge(secrets),
  };
  for (const name of aws) {
    const version = fleet.awsComponents[name];
    if (!version) throw new DeploymentConfigError(`fleet ${fleet.name}: no version for ${name}`);
    const merge = merges[name];
    out[name] = merge === undefined ? { componentVersion: version } : { componentVersion: version, configurationUpdate: { merge } };
  }
  return out;
}

/** Deployment policies: roll back on failure; let components defer an update (NOTIFY_COMPONENTS). */
export function deploymentPolicies(fleet: FleetConfig) {
  return {
    failureHandlingPolicy: 'ROLLBACK',
    // LocalControl defers an update while a control action (curtailment, isolation) is running,
    // through SubscribeToComponentUpdates/DeferComponentUpdate, up to this timeout.
    componentUpdatePolicy: { action: 'NOTIFY_COMPONENTS', timeoutInSeconds: fleet.componentUpdateTimeoutSeconds },
    configurationValidationPolicy: { timeoutInSeconds: fleet.configurationValidationTimeoutSeconds },
  };
}

/** IoT job settings: exponential rollout, abort on failure percentage, in-progress timeout. */
export function iotJobConfiguration(fleet: FleetConfig) {
  const c = fleet.rollout.rateIncreaseCriteria;
  // RateIncreaseCriteria is untyped JSON in CloudFormation and its keys are PascalCase
  // (cfn-lint F3018 otherwise).
  const rateIncreaseCriteria =
    c.numberOfSucceededThings !== undefined ? { NumberOfSucceededThings: c.numberOfSucceededThings } : { NumberOfNotifiedThings: c.numberOfNotifiedThings };
  return {
    jobExecutionsRolloutConfig: {
      maximumPerMinute: fleet.rollout.maximumPerMinute,
      exponentialRate: { baseRatePerMinute: fleet.rollout.baseRatePerMinute, incrementFactor: fleet.rollout.incrementFactor, rateIncreaseCriteria },
    },
    abortConfig: {
      criteriaList: [
        {
          action: 'CANCEL',
          failureType: 'ALL',
          minNumberOfExecutedThings: fleet.abort.minNumberOfExecutedThings,
          thresholdPercentage: fleet.abort.failureThresholdPercentage,
        },
      ],
    },
    timeoutConfig: { inProgressTimeoutInMinutes: fleet.jobTimeoutMinutes },
  };
}
