/**
 * Fleets and sites come from configuration files, not code: cdk/config/fleets.json and
 * cdk/config/sites.json. Both are validated here before any construct is made, so a typo fails the
 * synth with the file and key rather than a device rolling back.
 *
 * Naming: thing, thing-group and policy names are `dcmms_<fleet>_<site>...`. Fleet and site ids
 * exclude `_`, so the thing-name prefix `dcmms_<fleet>_<site>_` of one site can never match a
 * thing of another site (`plant` vs `plant-a`), which is what scopes the IoT policies. Colons are
 * not used: Greengrass core device thing names cannot contain `:` (awsdocs greengrass v2
 * install-greengrass-core-v2.md).
 */
import fs from 'node:fs';
import Ajv from 'ajv';
import semver from 'semver';

export const AWS_COMPONENTS = [
  'aws.greengrass.Nucleus',
  'aws.greengrass.TokenExchangeService',
  'aws.greengrass.LogManager',
  'aws.greengrass.StreamManager',
  'aws.greengrass.DiskSpooler',
  // Deployed only to the sites whose LocalControl names notification secrets (cdk/lib/secrets.ts).
  'aws.greengrass.SecretManager',
] as const;

/** DiskSpooler 1.0.x is a nucleus plugin for nucleus 2.11.0 and later (Greengrass developer guide, "Disk spooler"). */
export const DISK_SPOOLER_MIN_NUCLEUS = '2.11.0';
export type AwsComponent = (typeof AWS_COMPONENTS)[number];

export interface RolloutConfig {
  /** Jobs rollout: start rate, multiplied by incrementFactor each time the criterion is met. */
  readonly baseRatePerMinute: number;
  readonly incrementFactor: number;
  /** Exactly one of the two; rendered PascalCase (CloudFormation F3018 otherwise). */
  readonly rateIncreaseCriteria: { readonly numberOfNotifiedThings?: number; readonly numberOfSucceededThings?: number };
  readonly maximumPerMinute: number;
}

export interface FleetConfig {
  readonly name: string;
  readonly description: string;
  /** Pin the fleet to a recorded bundle version (rollback); default: the version just built. */
  readonly bundleVersion?: string;
  readonly awsComponents: { readonly [K in AwsComponent]?: string };
  /**
   * Deploy aws.greengrass.StreamManager and send the Uplink's exports through it: S3 (when
   * `uplinkS3Export`) as Stream Manager S3 tasks, IoT SiteWise, Kinesis (streamManagerExports).
   * Only these fleets' Uplink depends on Stream Manager (docs/uplink.md "Stream Manager").
   */
  readonly streamManager: boolean;
  /** What Stream Manager exports besides S3 (only with `streamManager`); default: SiteWise on, no Kinesis. */
  readonly streamManagerExports?: StreamManagerExports;
  /**
   * The Uplink's S3 exporter on, writing to the data bucket under `fleets/<fleet>/<thing>/`; only
   * then does the fleet's Token Exchange role get its per-thing PutObject grant.
   */
  readonly uplinkS3Export: boolean;
  /** The nucleus's MQTT spool (on disk, aws.greengrass.DiskSpooler): its `mqtt.spooler.maxSizeInBytes`. */
  readonly mqttSpoolMaxBytes: number;
  readonly rollout: RolloutConfig;
  readonly abort: { readonly failureThresholdPercentage: number; readonly minNumberOfExecutedThings: number };
  readonly jobTimeoutMinutes: number;
  readonly componentUpdateTimeoutSeconds: number;
  readonly configurationValidationTimeoutSeconds: number;
  readonly logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Data kept in the fleet's S3 prefix before expiry. */
  readonly dataRetentionDays: number;
  /** Optional: id of a claim certificate made outside CDK, to attach the claim policy to. */
  readonly claimCertificateId?: string;
  /**
   * The CPU architectures of the fleet's gateways, as Greengrass names them (recipe
   * `Platform.architecture`): default `["amd64"]`. The synth refuses a fleet whose bundle has a
   * component without a manifest for one of them (docs/aarch64.md "Fleets").
   */
  readonly architectures: readonly GatewayArchitecture[];
}

/** Gateway CPU architectures the bundle is built for (scripts/build.js `--arch all` adds aarch64). */
export const GATEWAY_ARCHITECTURES = ['amd64', 'aarch64'] as const;
export type GatewayArchitecture = (typeof GATEWAY_ARCHITECTURES)[number];

export interface StreamManagerExports {
  /** 1-minute and 15-minute means to IoT SiteWise (property aliases `/dcmms/<site>/<asset>/<point>`). Default true. */
  readonly sitewise?: boolean;
  /** An existing Kinesis data stream (in the stack's account and region) to export records to; none: no Kinesis. */
  readonly kinesisStreamName?: string;
}

export interface SiteConfig {
  readonly siteId: string;
  readonly fleet: string;
  readonly description?: string;
  /** IANA zone (daily rollups and reports follow the plant's local day). */
  readonly timeZone: string;
  readonly devices: readonly Readonly<Record<string, unknown>>[];
  readonly thresholds: Readonly<Record<string, unknown>>;
  /** Per component name, extra configuration merged for this site only. */
  readonly componentConfig?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly bundleVersion?: string;
  /**
   * Customer-managed KMS keys (key ARNs) that encrypt the secrets this site's LocalControl names:
   * the fleet's Token Exchange role may decrypt with them, through Secrets Manager and for those
   * secrets only (cdk/lib/secrets.ts). Not needed for secrets under the AWS managed key.
   */
  readonly secretsKmsKeyArns?: readonly string[];
}

export interface AppConfig {
  readonly fleets: readonly FleetConfig[];
  readonly sites: readonly SiteConfig[];
}

export class ConfigFileError extends Error {}

export const FLEET_ID = '^[a-z0-9][a-z0-9-]{0,30}$';
/** A subset of the contract's siteId pattern (components/lib/config BASE_CONFIG_PROPERTIES) without `_`. */
export const SITE_ID = '^[A-Za-z0-9][A-Za-z0-9-]{0,47}$';
const VERSION = '^[0-9]+\\.[0-9]+\\.[0-9]+$';

const fleetSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['description', 'awsComponents', 'streamManager', 'uplinkS3Export', 'mqttSpoolMaxBytes', 'rollout', 'abort', 'jobTimeoutMinutes', 'componentUpdateTimeoutSeconds', 'configurationValidationTimeoutSeconds', 'logLevel', 'dataRetentionDays'],
  properties: {
    description: { type: 'string', maxLength: 1000 },
    bundleVersion: { type: 'string', pattern: VERSION },
    awsComponents: {
      type: 'object',
      additionalProperties: false,
      required: ['aws.greengrass.Nucleus', 'aws.greengrass.TokenExchangeService', 'aws.greengrass.LogManager', 'aws.greengrass.DiskSpooler'],
      properties: Object.fromEntries(AWS_COMPONENTS.map((c) => [c, { type: 'string', pattern: VERSION }])),
    },
    streamManager: { type: 'boolean' },
    streamManagerExports: {
      type: 'object',
      additionalProperties: false,
      properties: {
        sitewise: { type: 'boolean' },
        // Kinesis Data Streams stream names (Kinesis API Reference, CreateStream).
        kinesisStreamName: { type: 'string', pattern: '^[a-zA-Z0-9_.-]{1,128}$' },
      },
    },
    uplinkS3Export: { type: 'boolean' },
    // 1 MiB to 4 GiB; the nucleus's default in-memory spool is 2.5 MB.
    mqttSpoolMaxBytes: { type: 'integer', minimum: 1048576, maximum: 4294967296 },
    rollout: {
      type: 'object',
      additionalProperties: false,
      required: ['baseRatePerMinute', 'incrementFactor', 'rateIncreaseCriteria', 'maximumPerMinute'],
      properties: {
        baseRatePerMinute: { type: 'integer', minimum: 1, maximum: 1000 },
        // AWS IoT Jobs: 1.1 to 5.0, one decimal place (API_iot_ExponentialRolloutRate).
        incrementFactor: { type: 'number', minimum: 1.1, maximum: 5, multipleOf: 0.1 },
        rateIncreaseCriteria: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          maxProperties: 1,
          properties: { numberOfNotifiedThings: { type: 'integer', minimum: 1 }, numberOfSucceededThings: { type: 'integer', minimum: 1 } },
        },
        maximumPerMinute: { type: 'integer', minimum: 1, maximum: 1000 },
      },
    },
    abort: {
      type: 'object',
      additionalProperties: false,
      required: ['failureThresholdPercentage', 'minNumberOfExecutedThings'],
      properties: {
        failureThresholdPercentage: { type: 'number', minimum: 0, maximum: 100 },
        minNumberOfExecutedThings: { type: 'integer', minimum: 1 },
      },
    },
    // Jobs in-progress timeout: 1 minute to 7 days (API_iot_TimeoutConfig).
    jobTimeoutMinutes: { type: 'integer', minimum: 1, maximum: 10080 },
    componentUpdateTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
    configurationValidationTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
    logLevel: { enum: ['DEBUG', 'INFO', 'WARN', 'ERROR'] },
    dataRetentionDays: { type: 'integer', minimum: 1, maximum: 3650 },
    claimCertificateId: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    architectures: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...GATEWAY_ARCHITECTURES] } },
  },
} as const;

const fleetsFileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['fleets'],
  properties: {
    $comment: { type: 'string' },
    fleets: { type: 'object', propertyNames: { pattern: FLEET_ID }, additionalProperties: fleetSchema },
  },
} as const;

const sitesFileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['sites'],
  properties: {
    $comment: { type: 'string' },
    sites: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['siteId', 'fleet', 'timeZone', 'devices', 'thresholds'],
        properties: {
          siteId: { type: 'string', pattern: SITE_ID },
          fleet: { type: 'string', pattern: FLEET_ID },
          description: { type: 'string', maxLength: 1000 },
          timeZone: { type: 'string', minLength: 1 },
          devices: {
            type: 'array',
            maxItems: 1000,
            items: { type: 'object', required: ['assetId'], properties: { assetId: { type: 'string', pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$' } } },
          },
          thresholds: { type: 'object' },
          componentConfig: { type: 'object', additionalProperties: { type: 'object' } },
          bundleVersion: { type: 'string', pattern: VERSION },
          // The form of each ARN is checked at synth (cdk/lib/secrets.ts), with the site and the form expected.
          secretsKmsKeyArns: { type: 'array', minItems: 1, maxItems: 20, uniqueItems: true, items: { type: 'string', minLength: 1 } },
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: false });
const validateFleets = ajv.compile(fleetsFileSchema);
const validateSites = ajv.compile(sitesFileSchema);

function readJson(file: string): unknown {
  if (!fs.existsSync(file)) throw new ConfigFileError(`${file} not found`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigFileError(`${file}: ${(e as Error).message}`);
  }
}

function explain(file: string, errors: typeof validateFleets.errors): string {
  return `${file}: ${(errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params['additionalProperty'])})` : ''}`).join('; ')}`;
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Validate already-parsed fleet and site documents (tests pass objects; loadConfig passes files). */
export function parseConfig(fleetsDoc: unknown, sitesDoc: unknown, names = { fleets: 'fleets.json', sites: 'sites.json' }): AppConfig {
  if (!validateFleets(fleetsDoc)) throw new ConfigFileError(explain(names.fleets, validateFleets.errors));
  if (!validateSites(sitesDoc)) throw new ConfigFileError(explain(names.sites, validateSites.errors));
  const fleetsRaw = (fleetsDoc as { fleets: Record<string, Omit<FleetConfig, 'name'>> }).fleets;
  const fleets: FleetConfig[] = Object.entries(fleetsRaw).map(([name, f]) => ({ ...f, architectures: f.architectures ?? ['amd64'], name }));
  const sites = (sitesDoc as { sites: SiteConfig[] }).sites;
  const fleetNames = new Set(fleets.map((f) => f.name));
  const seen = new Set<string>();
  for (const s of sites) {
    const where = `${names.sites}: site ${s.siteId}`;
    if (!fleetNames.has(s.fleet)) throw new ConfigFileError(`${where}: fleet ${s.fleet} is not in ${names.fleets} (${[...fleetNames].join(', ')})`);
    if (seen.has(s.siteId)) throw new ConfigFileError(`${where}: siteId is used twice (site ids are unique across fleets: they are the {siteId} of every topic)`);
    seen.add(s.siteId);
    if (!isTimeZone(s.timeZone)) throw new ConfigFileError(`${where}: timeZone ${JSON.stringify(s.timeZone)} is not an IANA time zone`);
    const assets = new Set<string>();
    for (const d of s.devices) {
      const id = String(d['assetId']);
      if (assets.has(id)) throw new ConfigFileError(`${where}: device assetId ${id} is listed twice`);
      assets.add(id);
    }
  }
  for (const f of fleets) {
    if (f.streamManager && !f.awsComponents['aws.greengrass.StreamManager']) {
      throw new ConfigFileError(`${names.fleets}: fleet ${f.name} enables streamManager but gives no aws.greengrass.StreamManager version`);
    }
    if (!f.streamManager && f.streamManagerExports !== undefined) {
      throw new ConfigFileError(`${names.fleets}: fleet ${f.name} sets streamManagerExports but not streamManager; Stream Manager exports need streamManager: true`);
    }
    const nucleus = f.awsComponents['aws.greengrass.Nucleus'];
    if (nucleus && semver.lt(nucleus, DISK_SPOOLER_MIN_NUCLEUS)) {
      throw new ConfigFileError(
        `${names.fleets}: fleet ${f.name} runs aws.greengrass.Nucleus ${nucleus}; the MQTT spool on disk (aws.greengrass.DiskSpooler) needs ${DISK_SPOOLER_MIN_NUCLEUS} or later`,
      );
    }
  }
  return { fleets, sites };
}

export function loadConfig(fleetsFile: string, sitesFile: string): AppConfig {
  return parseConfig(readJson(fleetsFile), readJson(sitesFile), { fleets: fleetsFile, sites: sitesFile });
}

export function sitesOf(config: AppConfig, fleet: string): SiteConfig[] {
  return config.sites.filter((s) => s.fleet === fleet);
}

/** Resource names (see the header for why `_` separates them). */
export const names = {
  fleetGroup: (fleet: string) => `dcmms_${fleet}`,
  siteGroup: (fleet: string, site: string) => `dcmms_${fleet}_${site}`,
  /** Every core device of the site is named `<this><serial>`. */
  thingPrefix: (fleet: string, site: string) => `dcmms_${fleet}_${site}_`,
  fleetThingPrefix: (fleet: string) => `dcmms_${fleet}_`,
  corePolicy: (fleet: string, site: string) => `dcmms_${fleet}_${site}_core`,
  claimPolicy: (fleet: string) => `dcmms_${fleet}_claim`,
  /**
   * MQTT client ids of devices while they provision with the claim certificate: the fleet
   * provisioning plugin's `deviceId` is `dcmms-claim_<fleet>_<serial>`. No thing name, and so no
   * client id of a provisioned gateway (`dcmms_...`, `<thing>#<n>`), starts with `dcmms-claim_`.
   */
  claimClientPrefix: (fleet: string) => `dcmms-claim_${fleet}_`,
  template: (fleet: string) => `dcmms_${fleet}_provisioning`,
  roleAlias: (fleet: string) => `dcmms_${fleet}_tes`,
  dataPrefix: (fleet: string) => `fleets/${fleet}/`,
  /**
   * Where one gateway may write: the fleet prefix, then its own thing name as the AWS IoT
   * credentials provider's IAM policy variable (resolved per request, not by CloudFormation).
   */
  thingDataPrefix: (fleet: string) => `fleets/${fleet}/\${credentials-iot:ThingName}/`,
} as const;
