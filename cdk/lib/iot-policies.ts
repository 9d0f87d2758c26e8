/**
 * AWS IoT policy documents (cdk-nag has no IoT rules, so test/cdk/least-privilege.test.ts walks
 * these). Sources: Greengrass developer guide, "Minimal AWS IoT policy for AWS IoT Greengrass V2
 * core devices" and "Set up AWS IoT fleet provisioning" (claim certificate policy).
 *
 * - Thing policy variables (`${iot:Connection.Thing.ThingName}`) do not work for Greengrass core
 *   devices, so every resource is scoped by thing-name prefix with `*`.
 * - The nucleus connects with extra client ids `<thing>#N`, hence `client/<prefix>*`.
 * - dCMMS topics come from the contract's IoT templates with {siteId} fixed: a gateway can only
 *   publish its own site's topics.
 */
import { Aws } from 'aws-cdk-lib';
import { COMPONENTS, IOT_TOPIC_TEMPLATES, type IotFamily } from '../../components/lib/contract';

export interface PolicyStatementJson {
  readonly Effect: 'Allow';
  readonly Action: string[];
  readonly Resource: string[];
}
export interface PolicyDocumentJson {
  readonly Version: '2012-10-17';
  readonly Statement: PolicyStatementJson[];
}

const iotArn = (resource: string): string => `arn:${Aws.PARTITION}:iot:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;

/** IoT Core topic of a contract family with {siteId} fixed and every other variable `*` (IoT policy wildcard). */
export function siteTopic(family: IotFamily, siteId: string): string {
  return IOT_TOPIC_TEMPLATES[family].replace('{siteId}', siteId).replace(/\{\w+\}/g, '*');
}

/** Which IoT Core families the bundle publishes and subscribes to, from the contract's component table. */
export function bundleIotFamilies(): { publish: IotFamily[]; subscribe: IotFamily[] } {
  const families = Object.keys(IOT_TOPIC_TEMPLATES) as IotFamily[];
  // The contract gives mqttproxy resources with `+`; compare with `+` to map them back to families.
  const asFilter = (f: IotFamily) => IOT_TOPIC_TEMPLATES[f].replace(/\{\w+\}/g, '+');
  const pub = new Set(COMPONENTS.flatMap((c) => c.topics.mqttproxy.publish));
  const sub = new Set(COMPONENTS.flatMap((c) => c.topics.mqttproxy.subscribe));
  return { publish: families.filter((f) => pub.has(asFilter(f))), subscribe: families.filter((f) => sub.has(asFilter(f))) };
}

/**
 * Greengrass data-plane actions that AWS IoT authorizes only on `*`: they name no resource a
 * policy could scope (awsdocs greengrass v2 device-auth.md lists them with "Resource": "*").
 */
export const GREENGRASS_DATA_PLANE_ACTIONS = [
  'greengrass:GetComponentVersionArtifact',
  'greengrass:ResolveComponentCandidates',
  'greengrass:GetDeploymentConfiguration',
  'greengrass:ListThingGroupsForCoreDevice',
] as const;

/** Policy for the core devices of one site (attached by the provisioning template). */
export function corePolicyDocument(thingPrefix: string, siteId: string, roleAliasArn: string): PolicyDocumentJson {
  const thing = `$aws/things/${thingPrefix}*`;
  const families = bundleIotFamilies();
  const statements: PolicyStatementJson[] = [
    { Effect: 'Allow', Action: ['iot:Connect'], Resource: [iotArn(`client/${thingPrefix}*`)] },
    {
      Effect: 'Allow',
      Action: ['iot:Publish', 'iot:Receive'],
      // Deployment status (greengrass/, greengrassv2/health), deployments as IoT jobs, shadows.
      Resource: [`${thing}/greengrass/health/json`, `${thing}/greengrassv2/health/json`, `${thing}/jobs/*`, `${thing}/shadow/*`].map((t) => iotArn(`topic/${t}`)),
    },
    { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${thing}/jobs/*`, `${thing}/shadow/*`].map((t) => iotArn(`topicfilter/${t}`)) },
    { Effect: 'Allow', Action: ['iot:Publish'], Resource: families.publish.map((f) => iotArn(`topic/${siteTopic(f, siteId)}`)) },
  ];
  if (families.subscribe.length > 0) {
    statements.push(
      { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: families.subscribe.map((f) => iotArn(`topicfilter/${siteTopic(f, siteId)}`)) },
      { Effect: 'Allow', Action: ['iot:Receive'], Resource: families.subscribe.map((f) => iotArn(`topic/${siteTopic(f, siteId)}`)) },
    );
  }
  statements.push(
    // Token Exchange Service: only this fleet's role alias.
    { Effect: 'Allow', Action: ['iot:AssumeRoleWithCertificate'], Resource: [roleAliasArn] },
    { Effect: 'Allow', Action: [...GREENGRASS_DATA_PLANE_ACTIONS], Resource: ['*'] },
  );
  return { Version: '2012-10-17', Statement: statements };
}

/**
 * Claim certificate policy: provisioning only (AWS IoT Core developer guide, "Provisioning by
 * claim"). It can ask for a certificate and call this fleet's template, nothing else, and connect
 * only with client ids that provisioned gateways never use.
 *
 * Why not the fleet's thing-name prefix: a client id is unique per account, and AWS IoT disconnects
 * the older connection when a second one uses the same id. The claim certificate sits on every
 * gateway image of the fleet; if it could connect as `dcmms_<fleet>_<site>_<serial>` (the nucleus's
 * client id) or `<thing>#<n>`, whoever holds it could kick any gateway of the fleet off, over and over.
 * The Greengrass fleet provisioning plugin connects with its `deviceId` parameter, or a random UUID
 * when that is not set (aws-greengrass-fleet-provisioning-by-claim, FleetProvisioningByClaimPlugin),
 * only while provisioning; the nucleus then connects with the thing name. So gateways are installed
 * with `deviceId: dcmms-claim_<fleet>_<serial>` (docs/cdk.md), and the policy allows exactly that
 * prefix. A UUID pattern (`????????-????-...`) would not do: `?` matches `_` and `-`, so some thing
 * names fit it.
 */
export function claimPolicyDocument(claimClientPrefix: string, templateName: string): PolicyDocumentJson {
  const topics = ['$aws/certificates/create/*', '$aws/certificates/create-from-csr/*', `$aws/provisioning-templates/${templateName}/provision/*`];
  return {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: ['iot:Connect'], Resource: [iotArn(`client/${claimClientPrefix}*`)] },
      { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: topics.map((t) => iotArn(`topic/${t}`)) },
      { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: topics.map((t) => iotArn(`topicfilter/${t}`)) },
    ],
  };
}
