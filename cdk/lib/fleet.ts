/**
 * One fleet: its thing groups (a fleet group, one child group per site), its Token Exchange role
 * and role alias, per-site core device IoT policies, fleet provisioning by claim (claim policy,
 * provisioning template, pre-provisioning hook) and one over-the-air deployment per site group.
 *
 * Why one deployment per site group and none on the fleet group: a thing group has exactly one
 * active deployment, and a device in several groups merges their deployments, so component
 * configuration would come from two places (Greengrass developer guide, "Create deployments"). The fleet
 * supplies the versions and the rollout/abort/timeout policies; the site supplies configuration.
 * Changing the fleet's bundle re-deploys every site of the fleet.
 */
import { Aws, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { CfnDeployment } from 'aws-cdk-lib/aws-greengrassv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { CfnPolicy, CfnPolicyPrincipalAttachment, CfnProvisioningTemplate, CfnRoleAlias, CfnThingGroup } from 'aws-cdk-lib/aws-iot';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { bucketArnRef } from './cloud';
import { Construct } from 'constructs';
import { names, type FleetConfig, type SiteConfig } from './config';
import type { PublishedComponent } from './components';
import { DeploymentConfigError, deploymentComponents, deploymentPolicies, iotJobConfiguration, resolveBundle, type BundleMember } from './deployment';
import { PreProvisioningHook } from './hook';
import { claimPolicyDocument, corePolicyDocument } from './iot-policies';
import { lockKey, type LockFile } from './lock';
import { siteSecrets, type SiteSecrets } from './secrets';
import { grantStreamManagerExports } from './stream-manager';

export interface FleetProps {
  readonly fleet: FleetConfig;
  readonly sites: readonly SiteConfig[];
  readonly published: ReadonlyMap<string, PublishedComponent>;
  readonly lock: LockFile;
  readonly dataBucket: s3.Bucket;
  /** The CDK asset bucket, to grant reads of a pinned older version's recorded artifact keys. */
  readonly assetBucket?: s3.IBucket;
  /** Each site's checked notification secrets, by site id (default: siteSecrets of each site). */
  readonly secrets?: ReadonlyMap<string, SiteSecrets>;
}

/**
 * Every component a site deploys must have a manifest for each of the fleet's gateway
 * architectures: Greengrass fails the deployment on a core device whose platform no manifest of a
 * component matches, so a missing aarch64 build is refused at synth instead of on the gateways.
 * A version pinned from the lock (not built now) was checked when it was built and released.
 */
export function checkArchitectures(fleet: FleetConfig, site: SiteConfig, bundle: readonly BundleMember[]): void {
  const missing: string[] = [];
  for (const m of bundle) {
    if (!m.published) continue;
    const archs = m.published.architectures;
    // No manifests (an empty recipe) or one for any architecture serve every gateway.
    if (archs.length === 0 || archs.includes(undefined)) continue;
    const lacking = fleet.architectures.filter((a) => !archs.includes(a));
    if (lacking.length) missing.push(`${m.name}@${m.published.version} (no ${lacking.join(', ')} manifest)`);
  }
  if (missing.length) {
    throw new DeploymentConfigError(
      `fleet ${fleet.name} has ${fleet.architectures.join(' and ')} gateways, but site ${site.siteId}'s bundle has ${missing.join(', ')}: ` +
        'build every architecture with `npm run build -- --arch all` (docs/aarch64.md)',
    );
  }
}

export interface SiteResources {
  readonly group: CfnThingGroup;
  readonly policy: CfnPolicy;
  readonly deployment: CfnDeployment;
}

export class Fleet extends Construct {
  readonly fleetGroup: CfnThingGroup;
  readonly tesRole: iam.Role;
  readonly roleAlias: CfnRoleAlias;
  readonly template: CfnProvisioningTemplate;
  readonly claimPolicy: CfnPolicy;
  readonly sites = new Map<string, SiteResources>();

  private readonly secrets: ReadonlyMap<string, SiteSecrets>;

  constructor(scope: Construct, id: string, props: FleetProps) {
    super(scope, id);
    const { fleet } = props;
    const stack = Stack.of(this);
    this.secrets = props.secrets ?? new Map(props.sites.map((s) => [s.siteId, siteSecrets(s, fleet)]));

    this.fleetGroup = new CfnThingGroup(this, 'FleetGroup', {
      thingGroupName: names.fleetGroup(fleet.name),
      thingGroupProperties: { thingGroupDescription: fleet.description, attributePayload: { attributes: { fleet: fleet.name } } },
    });

    this.tesRole = this.tokenExchangeRole(props);
    this.roleAlias = new CfnRoleAlias(this, 'RoleAlias', {
      roleAlias: names.roleAlias(fleet.name),
      roleArn: this.tesRole.roleArn,
      credentialDurationSeconds: 3600,
    });

    const templateName = names.template(fleet.name);
    this.claimPolicy = new CfnPolicy(this, 'ClaimPolicy', {
      policyName: names.claimPolicy(fleet.name),
      policyDocument: claimPolicyDocument(names.claimClientPrefix(fleet.name), templateName),
    });
    if (fleet.claimCertificateId) {
      new CfnPolicyPrincipalAttachment(this, 'ClaimPolicyAttachment', {
        policyName: this.claimPolicy.ref,
        principal: stack.formatArn({ service: 'iot', resource: 'cert', resourceName: fleet.claimCertificateId }),
      });
    }

    for (const site of props.sites) this.sites.set(site.siteId, this.site(props, site));

    const hook = new PreProvisioningHook(this, 'PreProvisioningHook', {
      fleet: fleet.name,
      fleetThingPrefix: names.fleetThingPrefix(fleet.name),
      siteIds: props.sites.map((s) => s.siteId),
      templateName,
    });
    const provisioningRole = new iam.Role(this, 'ProvisioningRole', {
      assumedBy: new iam.ServicePrincipal('iot.amazonaws.com'),
      description: `dCMMS ${fleet.name}: AWS IoT fleet provisioning registers core devices`,
      // The policy AWS's Greengrass fleet provisioning guide names (awsdocs greengrass v2
      // fleet-provisioning-setup.md): it tracks what RegisterThing needs as AWS changes it.
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSIoTThingsRegistration')],
    });
    Validations.of(provisioningRole).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSIoTThingsRegistration]',
      reason:
        'AWS IoT assumes this role to run RegisterThing for the fleet template; AWS documents this managed policy for Greengrass fleet provisioning (greengrass v2 fleet-provisioning-setup.md) and keeps it in step with the provisioning service. Only iot.amazonaws.com can assume the role, and the template plus the pre-provisioning hook fix what it creates.',
    });
    this.template = new CfnProvisioningTemplate(this, 'ProvisioningTemplate', {
      templateName,
      description: `dCMMS ${fleet.name}: Greengrass core devices by claim`,
      enabled: true,
      templateType: 'FLEET_PROVISIONING',
      provisioningRoleArn: provisioningRole.roleArn,
      preProvisioningHook: { targetArn: hook.fn.functionArn, payloadVersion: '2020-04-01' },
      templateBody: JSON.stringify(provisioningTemplateBody(fleet.name)),
    });
    // The hook's resource policy must exist before IoT validates the template.
    this.template.node.addDependency(hook);
    for (const s of this.sites.values()) this.template.node.addDependency(s.group, s.policy);
  }

  /** Token Exchange role: what every gateway of the fleet may do in AWS (awsdocs device-service-role.md). */
  private tokenExchangeRole(props: FleetProps): iam.Role {
    const { fleet } = props;
    const role = new iam.Role(this, 'TokenExchangeRole', {
      assumedBy: new iam.ServicePrincipal('credentials.iot.amazonaws.com'),
      description: `dCMMS ${fleet.name}: Greengrass core devices (Token Exchange Service)`,
    });
    // Artifacts of the component versions this fleet can deploy: exact S3 objects, no wildcard.
    const objects = new Set<string>();
    for (const p of props.published.values()) for (const arn of p.artifactObjectArns) objects.add(arn);
    for (const s of [fleet.bundleVersion, ...props.sites.map((x) => x.bundleVersion)]) {
      if (!s) continue;
      for (const m of resolveBundle(props.published, props.lock, s)) {
        for (const key of props.lock.components[lockKey(m.name, m.version)]?.assets ?? []) {
          if (props.assetBucket) objects.add(props.assetBucket.arnForObjects(key));
        }
      }
    }
    if (objects.size > 0) role.addToPolicy(new iam.PolicyStatement({ sid: 'ReadComponentArtifacts', actions: ['s3:GetObject'], resources: [...objects] }));
    // Only where the fleet turns the Uplink's S3 exporter on: a fleet that does not export to S3
    // has no S3 write grant at all. A Stream Manager fleet uploads through Stream Manager instead
    // (its grant: grantStreamManagerExports).
    if (fleet.uplinkS3Export && !fleet.streamManager) {
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'UploadOwnData',
          // The Uplink's S3 exporter writes single PutObjects (batches of at most 124 KB, plus its
          // probe object) under `<fleet prefix><thing name>/`. The AWS IoT credentials provider fills
          // `${credentials-iot:ThingName}` with the name of the thing whose certificate asked for the
          // credentials (the nucleus sends it as x-amzn-iot-thingname; AWS IoT Core developer guide,
          // "Authorizing direct calls to AWS services"): a gateway can write only its own objects,
          // never another gateway's, even within its site.
          actions: ['s3:PutObject'],
          resources: [props.dataBucket.arnForObjects(`${names.thingDataPrefix(fleet.name)}*`)],
        }),
      );
      Validations.of(role).acknowledge({
        // cdk-nag writes a policy variable `${x}` as `<x>` in finding ids.
        id: `AwsSolutions-IAM5[Resource::<${bucketArnRef(props.dataBucket)}>/${names.thingDataPrefix(fleet.name).replace(/\$\{([^}]+)\}/g, '<$1>')}*]`,
        reason: `Gateways upload data objects with generated keys (class, day, outbox and sequence); the grant is the calling gateway's own prefix ${names.thingDataPrefix(fleet.name)} of the data bucket, resolved per request by the AWS IoT credentials provider, PutObject only.`,
      });
    }
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'GreengrassLogs',
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        // LogManager creates /aws/greengrass/{GreengrassSystemComponent,UserComponent}/<region>/<name>
        // on demand (awsdocs greengrass v2 log-manager-component.md).
        resources: [`arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:/aws/greengrass/*`],
      }),
    );
    const logs = `arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/greengrass/*`;
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${logs}]`,
      reason: 'LogManager creates one log group per component and region under /aws/greengrass/ on demand; their names are not known at deploy time. Scoped to that path, log actions only.',
    });
    this.grantSecrets(role, props.sites);
    grantStreamManagerExports(role, fleet, props.dataBucket);
    return role;
  }

  /**
   * The notification secrets the fleet's sites name (docs/cdk.md "Notifications and secrets"): the
   * secret manager component on a gateway fetches them with the Token Exchange role's credentials
   * (Greengrass developer guide, "Secret manager": requirements). Exact ARNs, no wildcard; a fleet
   * whose sites name none gets no secretsmanager or kms permission at all.
   */
  private grantSecrets(role: iam.Role, sites: readonly SiteConfig[]): void {
    const perSite = sites.map((s) => this.secrets.get(s.siteId)).filter((s): s is SiteSecrets => s !== undefined && s.secrets.length > 0);
    const arns = [...new Set(perSite.flatMap((s) => s.secrets.map((x) => x.arn)))];
    if (arns.length === 0) return;
    role.addToPolicy(new iam.PolicyStatement({ sid: 'ReadNotificationSecrets', actions: ['secretsmanager:GetSecretValue'], resources: arns }));
    for (const s of perSite) {
      if (s.keys.length === 0) continue;
      // A customer-managed key decrypts only when Secrets Manager asks in this region (kms:ViaService)
      // and only for this site's secrets (Secrets Manager's encryption context carries the secret's
      // ARN: Secrets Manager User Guide, "Secret encryption and decryption"), so the grant is no
      // general use of the key. No sid: one statement per site, and sids must be unique.
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: s.keys.map((k) => k.arn),
          conditions: {
            StringEquals: {
              'kms:ViaService': `secretsmanager.${Aws.REGION}.${Aws.URL_SUFFIX}`,
              'kms:EncryptionContext:SecretARN': s.secrets.map((x) => x.arn),
            },
          },
        }),
      );
    }
  }

  private site(props: FleetProps, site: SiteConfig): SiteResources {
    const { fleet } = props;
    const scope = new Construct(this, `Site-${site.siteId}`);
    const group = new CfnThingGroup(scope, 'Group', {
      thingGroupName: names.siteGroup(fleet.name, site.siteId),
      parentGroupName: this.fleetGroup.ref,
      thingGroupProperties: {
        thingGroupDescription: site.description ?? `dCMMS site ${site.siteId}`,
        attributePayload: { attributes: { fleet: fleet.name, siteId: site.siteId, timeZone: site.timeZone } },
      },
    });
    const policy = new CfnPolicy(scope, 'CorePolicy', {
      policyName: names.corePolicy(fleet.name, site.siteId),
      policyDocument: corePolicyDocument(names.thingPrefix(fleet.name, site.siteId), site.siteId, this.roleAlias.attrRoleAliasArn),
    });
    const bundle = resolveBundle(props.published, props.lock, site.bundleVersion ?? fleet.bundleVersion);
    checkArchitectures(fleet, site, bundle);
    const deployment = new CfnDeployment(scope, 'Deployment', {
      targetArn: group.attrArn,
      deploymentName: `${names.siteGroup(fleet.name, site.siteId)} bundle`,
      components: deploymentComponents(
        fleet,
        site,
        bundle,
        {
          dataBucketName: props.dataBucket.bucketName,
          region: Stack.of(this).region,
          toJson: (v) => Stack.of(this).toJsonString(v),
        },
        this.secrets.get(site.siteId),
      ),
      deploymentPolicies: deploymentPolicies(fleet),
      iotJobConfiguration: iotJobConfiguration(fleet),
      tags: { 'dcmms:fleet': fleet.name, 'dcmms:site': site.siteId },
    });
    for (const m of bundle) if (m.published) deployment.node.addDependency(m.published.resource);
    // Deleting the stack must not cancel what gateways run; a replaced revision is superseded
    // on the devices anyway (Greengrass API Reference, DeleteDeployment).
    deployment.applyRemovalPolicy(RemovalPolicy.RETAIN);
    return { group, policy, deployment };
  }
}

/**
 * The fleet provisioning template (awsdocs iot provision-template.html; greengrass v2
 * fleet-provisioning-setup.md). The device passes ThingName and SiteId; the hook has checked both.
 * Group and policy names are derived from SiteId here, not passed by the device, so a device cannot
 * pick another site's policy.
 */
export function provisioningTemplateBody(fleet: string): Record<string, unknown> {
  const forSite = (suffix: string) => ({ 'Fn::Join': ['', [names.fleetThingPrefix(fleet), { Ref: 'SiteId' }, suffix]] });
  return {
    Parameters: {
      ThingName: { Type: 'String' },
      SiteId: { Type: 'String' },
      'AWS::IoT::Certificate::Id': { Type: 'String' },
    },
    Resources: {
      thing: {
        Type: 'AWS::IoT::Thing',
        OverrideSettings: { AttributePayload: 'MERGE', ThingGroups: 'DO_NOTHING', ThingTypeName: 'REPLACE' },
        Properties: {
          ThingName: { Ref: 'ThingName' },
          AttributePayload: { fleet, siteId: { Ref: 'SiteId' } },
          ThingGroups: [forSite('')],
        },
      },
      policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: forSite('_core') } },
      certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'Active' } },
    },
  };
}
