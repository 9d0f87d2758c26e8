/**
 * The dCMMS Edge stack. One stack on purpose: component versions are account-wide, deployments of
 * every fleet reference them, and a cross-stack export of `attrComponentVersion` would change on
 * every version bump, which CloudFormation refuses while another stack imports it ("Cannot update
 * export ... as it is in use"). Constructs split the concerns instead (components, cloud, fleets).
 *
 * Environment-agnostic: no account or region in code; ARNs use the AWS::Partition, AWS::Region and
 * AWS::AccountId pseudo parameters.
 */
import { Annotations, Stack, type StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { BuiltComponent } from './build-output';
import { CloudData } from './cloud';
import { Components } from './components';
import { sitesOf, type AppConfig } from './config';
import { Fleet } from './fleet';
import { checkLock, type LockFile, type LockMode } from './lock';
import { allNamedArns, holdStackToSecrets, siteSecrets, type SiteSecrets } from './secrets';
import { StreamManagerSwitch, UPLINK_COMPONENT } from './stream-manager';

export interface DcmmsEdgeStackProps extends StackProps {
  readonly config: AppConfig;
  readonly built: readonly BuiltComponent[];
  readonly lockFile: string;
  readonly lockMode: LockMode;
}

export class DcmmsEdgeStack extends Stack {
  readonly components: Components;
  readonly cloud: CloudData;
  readonly fleets = new Map<string, Fleet>();
  readonly lock: LockFile;
  /** com.dcmms.edge.UplinkStreamManager 1.0.0 and 2.0.0: whether a fleet's Uplink brings Stream Manager (stream-manager.ts). */
  readonly streamManagerSwitch: StreamManagerSwitch;

  constructor(scope: Construct, id: string, props: DcmmsEdgeStackProps) {
    super(scope, id, props);
    this.components = new Components(this, 'Components', { built: props.built });
    this.lock = checkLock(
      props.lockFile,
      props.built.map((c) => ({ ...c, assets: this.components.published.get(c.name)?.assetKeys ?? [] })),
      props.lockMode,
      (_keys, message) => Annotations.of(this).addWarning(message),
    );
    this.cloud = new CloudData(this, 'Cloud', { fleets: props.config.fleets });
    this.streamManagerSwitch = new StreamManagerSwitch(this, 'UplinkStreamManager');
    // The Uplink's recipe names the switch: the switch versions exist first.
    this.components.published.get(UPLINK_COMPONENT)?.resource.node.addDependency(this.streamManagerSwitch);
    // Notification secrets of every site, checked before any fleet is built; all of them in the
    // stack's partition and region (docs/cdk.md "Notifications and secrets").
    const secrets = new Map<string, SiteSecrets>();
    for (const site of props.config.sites) {
      const fleet = props.config.fleets.find((f) => f.name === site.fleet)!;
      secrets.set(site.siteId, siteSecrets(site, fleet));
    }
    holdStackToSecrets(this, allNamedArns(secrets.values()));
    for (const fleet of props.config.fleets) {
      this.fleets.set(
        fleet.name,
        new Fleet(this, `Fleet-${fleet.name}`, {
          fleet,
          sites: sitesOf(props.config, fleet.name),
          published: this.components.published,
          lock: this.lock,
          dataBucket: this.cloud.dataBucket,
          secrets,
          ...(this.components.assetBucket ? { assetBucket: this.components.assetBucket } : {}),
        }),
      );
      for (const s of this.fleets.get(fleet.name)!.sites.values()) s.deployment.node.addDependency(this.streamManagerSwitch);
    }
  }
}
