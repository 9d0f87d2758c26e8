/**
 * Greengrass Stream Manager for the fleets that set `streamManager` (docs/uplink.md "Stream Manager",
 * docs/cdk.md): the Uplink's configuration for it, the Token Exchange role's grants for its exports,
 * and how the Uplink comes to depend on aws.greengrass.StreamManager on those fleets only.
 *
 * The dependency. Greengrass installs every component a recipe names as a dependency, so a static
 * dependency in the Uplink's recipe would put Stream Manager (a JVM, 70 MB of RAM and more) on every
 * gateway; and a component version has one recipe per account and region, so CDK cannot give the
 * same Uplink version two recipes for two fleets. Instead the Uplink's published recipe depends on a
 * small switch component, `com.dcmms.edge.UplinkStreamManager`, with no artifacts and no lifecycle,
 * published in two versions:
 *   1.0.0  no dependencies                               (fleets without Stream Manager)
 *   2.0.0  depends on aws.greengrass.StreamManager 2.x   (fleets with it)
 * and every site deployment names the switch as a root component at the fleet's version. Greengrass
 * resolves the Uplink's requirement (>=1.0.0 <3.0.0) to that version, so on a Stream Manager fleet the
 * Uplink starts after Stream Manager, and nowhere else is Stream Manager installed. Both edges are
 * SOFT: the Uplink reconnects to Stream Manager by itself, it need not restart when Stream Manager does.
 * The local runtime and gdk deploy the recipe as built (no switch); CDK adds the dependency when it
 * publishes (cdk/lib/components.ts).
 */
import { Aws, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { CfnComponentVersion } from 'aws-cdk-lib/aws-greengrassv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { Json, Recipe } from './build-output';
import { bucketArnRef } from './cloud';
import { names, type FleetConfig } from './config';

export const STREAM_MANAGER_COMPONENT = 'aws.greengrass.StreamManager';
export const UPLINK_COMPONENT = 'com.dcmms.edge.Uplink';
export const UPLINK_SM_SWITCH = 'com.dcmms.edge.UplinkStreamManager';
export const UPLINK_SM_SWITCH_OFF = '1.0.0';
export const UPLINK_SM_SWITCH_ON = '2.0.0';
/** What the Uplink's published recipe requires of the switch: either version. */
export const UPLINK_SM_SWITCH_REQUIREMENT = '>=1.0.0 <3.0.0';

/** The switch version a fleet deploys. */
export const switchVersion = (fleet: FleetConfig): string => (fleet.streamManager ? UPLINK_SM_SWITCH_ON : UPLINK_SM_SWITCH_OFF);

export function switchRecipe(version: string): Recipe {
  const on = version === UPLINK_SM_SWITCH_ON;
  return {
    RecipeFormatVersion: '2020-01-25',
    ComponentName: UPLINK_SM_SWITCH,
    ComponentVersion: version,
    ComponentDescription: on
      ? 'dCMMS Edge: the Uplink exports through Greengrass Stream Manager on this gateway (pulls in aws.greengrass.StreamManager).'
      : 'dCMMS Edge: the Uplink does not use Greengrass Stream Manager on this gateway (no dependencies).',
    ComponentPublisher: 'dCMMS',
    ...(on ? { ComponentDependencies: { [STREAM_MANAGER_COMPONENT]: { VersionRequirement: '>=2.0.0 <3.0.0', DependencyType: 'SOFT' } } } : {}),
    Manifests: [{ Platform: { os: 'linux' } }],
  };
}

/** The Uplink's recipe as CDK publishes it: with the SOFT dependency on the switch. */
export function withStreamManagerSwitch(recipe: Recipe): Recipe {
  const deps = (recipe['ComponentDependencies'] ?? {}) as { [k: string]: Json };
  return { ...recipe, ComponentDependencies: { ...deps, [UPLINK_SM_SWITCH]: { VersionRequirement: UPLINK_SM_SWITCH_REQUIREMENT, DependencyType: 'SOFT' } } };
}

/** Both versions of the switch, retained like every component version (deployments and rollbacks name them). */
export class StreamManagerSwitch extends Construct {
  readonly versions: ReadonlyMap<string, CfnComponentVersion>;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const versions = new Map<string, CfnComponentVersion>();
    for (const v of [UPLINK_SM_SWITCH_OFF, UPLINK_SM_SWITCH_ON]) {
      const r = new CfnComponentVersion(this, `${UPLINK_SM_SWITCH}-${v}`, {
        inlineRecipe: JSON.stringify(switchRecipe(v)),
        tags: { 'dcmms:component': UPLINK_SM_SWITCH, 'dcmms:version': v },
      });
      r.applyRemovalPolicy(RemovalPolicy.RETAIN);
      versions.set(v, r);
    }
    this.versions = versions;
  }
}

/** The cloud resources the Uplink's Stream Manager exports of a fleet go to. */
export interface SmCloud {
  readonly dataBucketName: string;
}

const CLASSES_ALL = ['alarms', 'events', '1m', '15m', '1d', 'health'] as const;

/**
 * The Uplink's configuration on a Stream Manager fleet: the exports, and routes that name them.
 * S3 (with `uplinkS3Export`) goes through Stream Manager instead of the direct exporter, to the same
 * bucket, prefix and keys; SiteWise takes the 1-minute and 15-minute means; Kinesis, when configured,
 * what IoT Core gets (alarms, events, 15-minute and daily rollups), one record per record.
 */
export function uplinkStreamManagerConfig(fleet: FleetConfig, cloud: SmCloud): Record<string, unknown> {
  const s3 = fleet.uplinkS3Export;
  const sitewise = fleet.streamManagerExports?.sitewise ?? true;
  const kinesis = fleet.streamManagerExports?.kinesisStreamName;
  const routes: Record<string, string[]> = {};
  for (const cls of CLASSES_ALL) {
    const r: string[] = cls === 'health' ? [] : ['iotcore'];
    if (cls === '1m') r.splice(0);
    if (s3) r.push('streammanager-s3');
    if (sitewise && (cls === '1m' || cls === '15m')) r.push('streammanager-sitewise');
    if (kinesis && cls !== '1m' && cls !== 'health') r.push('streammanager-kinesis');
    routes[cls] = r;
  }
  return {
    exporters: {
      ...(s3 ? { s3: { enabled: false } } : {}),
      streamManager: {
        enabled: true,
        s3: s3 ? { enabled: true, bucket: cloud.dataBucketName, prefix: names.dataPrefix(fleet.name) } : { enabled: false },
        sitewise: { enabled: sitewise },
        kinesis: kinesis ? { enabled: true, streamName: kinesis } : { enabled: false },
      },
    },
    routes,
  };
}

/** Actions Stream Manager's S3 task export needs (Greengrass developer guide, "Stream manager": export configurations, Amazon S3). */
export const SM_S3_ACTIONS = ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'];

/**
 * The Token Exchange role's grants for a Stream Manager fleet's exports (Stream Manager exports with
 * the nucleus's TES credentials), exactly what each export calls and nothing for fleets without:
 *  - S3 tasks: PutObject and the two multipart actions (Stream Manager uploads files over its
 *    multipart threshold in parts) on the calling gateway's own prefix, as the direct exporter's grant;
 *  - IoT SiteWise: BatchPutAssetPropertyValue on the account's time series in the stack's region
 *    (values by property alias are authorized on the data stream, a `time-series` resource; aliases are
 *    created on first write, so their ids are not known here);
 *  - Kinesis: PutRecords on the one configured stream.
 */
export function grantStreamManagerExports(role: iam.Role, fleet: FleetConfig, dataBucket: s3.Bucket): void {
  if (!fleet.streamManager) return;
  if (fleet.uplinkS3Export) {
    role.addToPolicy(new iam.PolicyStatement({ sid: 'StreamManagerS3Export', actions: SM_S3_ACTIONS, resources: [dataBucket.arnForObjects(`${names.thingDataPrefix(fleet.name)}*`)] }));
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketArnRef(dataBucket)}>/${names.thingDataPrefix(fleet.name).replace(/\$\{([^}]+)\}/g, '<$1>')}*]`,
      reason: `Stream Manager uploads the Uplink's batch files with generated keys (class, day, outbox and sequence) under the calling gateway's own prefix ${names.thingDataPrefix(fleet.name)}, resolved per request by the AWS IoT credentials provider; PutObject and the multipart actions only.`,
    });
  }
  if (fleet.streamManagerExports?.sitewise ?? true) {
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'StreamManagerSiteWiseExport',
        actions: ['iotsitewise:BatchPutAssetPropertyValue'],
        resources: [`arn:${Aws.PARTITION}:iotsitewise:${Aws.REGION}:${Aws.ACCOUNT_ID}:time-series/*`],
      }),
    );
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iotsitewise:<AWS::Region>:<AWS::AccountId>:time-series/*]',
      reason: 'Stream Manager writes the 1-minute and 15-minute means by property alias (/dcmms/<site>/<asset>/<point>); IoT SiteWise creates the data stream of an alias on its first value, so its id is not known at deploy time. BatchPutAssetPropertyValue only, this account and region.',
    });
  }
  const kinesis = fleet.streamManagerExports?.kinesisStreamName;
  if (kinesis) {
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'StreamManagerKinesisExport',
        actions: ['kinesis:PutRecords'],
        resources: [Stack.of(role).formatArn({ service: 'kinesis', resource: 'stream', resourceName: kinesis })],
      }),
    );
  }
}
