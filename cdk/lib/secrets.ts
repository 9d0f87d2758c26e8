/**
 * Secrets a site's LocalControl names for its notification outputs (`outputs.email.passwordSecret`,
 * `outputs.webhook.bearerTokenSecret`; docs/local-control.md "Secrets"), as the CDK app sets them
 * up (docs/cdk.md "Notifications and secrets"): the ARNs are checked here, the deployment carries
 * aws.greengrass.SecretManager with them (deployment.ts), the fleet's Token Exchange role may read
 * exactly them (fleet.ts), and the stack is held to their partition and region (this file).
 *
 * Only ARNs go into the template, never a value: Secrets Manager holds the values, the secret
 * manager component fetches them on the gateway with the Token Exchange role's credentials.
 */
import { Aws, CfnRule, Fn, Stack, Token } from 'aws-cdk-lib';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { secretIds, type SecretNaming } from '../../components/local-control/notify-options';
import type { FleetConfig, SiteConfig } from './config';

export const SECRET_MANAGER_COMPONENT = 'aws.greengrass.SecretManager';
export const LOCAL_CONTROL_COMPONENT = 'com.dcmms.edge.LocalControl';
/**
 * What a site's deployment resets on LocalControl before its merge: the secret manager policy an
 * earlier revision merged goes, so a secret the site no longer names is no longer readable over IPC
 * (a MERGE alone only adds and replaces keys). The recipe has no such policy, so the reset removes it.
 */
export const SECRET_POLICY_RESET = `/accessControl/${SECRET_MANAGER_COMPONENT}`;

/** A site's notification secrets that cannot be set up: the message names the site (or fleet) and the key. */
export class SecretsConfigError extends Error {}

/** The form a secret ARN must have, as error messages show it. */
export const SECRET_ARN_FORM = 'arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>';
export const KMS_KEY_ARN_FORM = 'arn:<partition>:kms:<region>:<account>:key/<key id>';

/** AWS partitions (AWS General Reference, "Amazon Resource Names"). */
export const PARTITIONS = ['aws', 'aws-cn', 'aws-us-gov', 'aws-iso', 'aws-iso-b', 'aws-iso-e', 'aws-iso-f', 'aws-eusc'] as const;

const REGION = '[a-z]{2}(?:-[a-z]+)+-\\d{1,2}';
/**
 * The full ARN, with the hyphen and six characters Secrets Manager appends to every secret name
 * (Secrets Manager User Guide, "What's in a Secrets Manager secret?"). A partial ARN or a bare name
 * would do for GetSecretValue, but not for IAM: a policy's resource is matched against the full
 * ARN, so a grant on a partial ARN allows nothing. Names: letters, digits and /_+=.@- .
 */
const SECRET_ARN = new RegExp(`^arn:([a-z-]+):secretsmanager:(${REGION}):(\\d{12}):secret:[A-Za-z0-9/_+=.@-]{1,512}-[A-Za-z0-9]{6}$`);
/** A key ARN (a UUID key id or a multi-Region `mrk-` id): an alias ARN in an IAM policy authorises no use of the key. */
const KMS_KEY_ARN = new RegExp(`^arn:([a-z-]+):kms:(${REGION}):(\\d{12}):key/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`);

export interface ArnPlace {
  readonly partition: string;
  readonly region: string;
}

/** An ARN from sites.json, where it stands (for messages) and its partition and region. */
export interface NamedArn extends ArnPlace {
  readonly arn: string;
  /** `site <id>: <key>`, as the messages name it. */
  readonly where: string;
}

/**
 * The partition and region of a secret (or key) ARN, or why it is not one: unknown partition, or
 * a region that belongs to another partition (RegionInfo knows the regions CDK knows; a region
 * newer than CDK is taken as it is written).
 */
export function parseArn(arn: string, kind: 'secret' | 'key'): ArnPlace | string {
  const m = (kind === 'secret' ? SECRET_ARN : KMS_KEY_ARN).exec(arn);
  const form = kind === 'secret' ? SECRET_ARN_FORM : KMS_KEY_ARN_FORM;
  if (!m) {
    return kind === 'secret'
      ? `is not a Secrets Manager secret ARN: expected ${form}, the full ARN with the 6 characters Secrets Manager appends to the name (the Token Exchange role's grant and the secret manager component need it)`
      : `is not a KMS key ARN: expected ${form} (an alias does not authorise the key's use in an IAM policy)`;
  }
  const [, partition, region] = m as unknown as [string, string, string];
  if (!(PARTITIONS as readonly string[]).includes(partition)) return `names partition ${partition}, which is not an AWS partition (${PARTITIONS.join(', ')}); expected ${form}`;
  const regionPartition = RegionInfo.get(region).partition;
  if (regionPartition !== undefined && regionPartition !== partition) return `names partition ${partition}, but region ${region} is in partition ${regionPartition}; expected ${form} with the region's own partition`;
  return { partition, region };
}

/**
 * Every secret and key ARN of the app must be in one partition and one region: the stack is
 * deployed into one region, its gateways' nucleus runs in that region, and the secret manager
 * component calls Secrets Manager in the nucleus's region (aws-greengrass-secret-manager,
 * AWSSecretClient), so a secret elsewhere could not be fetched. Where the stack's region is known
 * at synth it is compared here; the app's stack is environment-agnostic, so there a CloudFormation
 * rule makes the deployment itself fail in another partition or region, before any resource
 * changes. Without secrets, nothing.
 */
export function holdStackToSecrets(stack: Stack, arns: readonly NamedArn[]): void {
  const [first] = arns;
  if (!first) return;
  for (const a of arns) {
    if (a.partition !== first.partition || a.region !== first.region) {
      throw new SecretsConfigError(
        `${a.where} ${JSON.stringify(a.arn)} is in partition ${a.partition}, region ${a.region}, but ${first.where} ${JSON.stringify(first.arn)} is in partition ${first.partition}, region ${first.region}: ` +
          `one stack deploys to one region, and its gateways read secrets from that region`,
      );
    }
  }
  if (!Token.isUnresolved(stack.region)) {
    const partition = RegionInfo.get(stack.region).partition;
    if (partition !== undefined && partition !== first.partition) {
      throw new SecretsConfigError(`${first.where} ${JSON.stringify(first.arn)} is in partition ${first.partition}, but the stack deploys to region ${stack.region} of partition ${partition}`);
    }
    if (stack.region !== first.region) {
      throw new SecretsConfigError(`${first.where} ${JSON.stringify(first.arn)} is in region ${first.region}, but the stack deploys to region ${stack.region}: its gateways read secrets from their own region`);
    }
    return;
  }
  new CfnRule(stack, 'SecretsInStackRegion', {
    assertions: [
      {
        assert: Fn.conditionEquals(Aws.PARTITION, first.partition),
        assertDescription: `The notification secrets named in sites.json are in partition ${first.partition}: deploy this stack there, or name secrets of this partition.`,
      },
      {
        assert: Fn.conditionEquals(Aws.REGION, first.region),
        assertDescription: `The notification secrets named in sites.json are in region ${first.region}, where the gateways' secret manager reads them: deploy this stack there, or name secrets of this region.`,
      },
    ],
  });
}

/**
 * The keys of LocalControl's `outputs` that name a secret, and the inline value each replaces
 * (docs/local-control.md "Notifications"): an inline value is for the local runtime and tests only.
 */
const SECRET_KEYS = [
  { channel: 'email', secretKey: 'passwordSecret', inlineKey: 'password', what: 'the SMTP password' },
  { channel: 'webhook', secretKey: 'bearerTokenSecret', inlineKey: 'bearerToken', what: 'the webhook token' },
] as const;

/** What a site's notification outputs need from its deployment and its fleet's Token Exchange role. */
export interface SiteSecrets {
  readonly siteId: string;
  /** The secret ARNs LocalControl names, once each, in the order of secretIds (notify-options.ts). */
  readonly secrets: readonly NamedArn[];
  /** secretsKmsKeyArns, checked. */
  readonly keys: readonly NamedArn[];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The secrets a site's LocalControl configuration (sites.json `componentConfig`) names, checked:
 * no inline password or token (it would be in the template, the deployment and every gateway's
 * configuration in plain text); each secret a full Secrets Manager ARN; each key a KMS key ARN and
 * only with secrets to decrypt; a fleet that can deploy the secret manager. Partition and region
 * across the app are holdStackToSecrets's part.
 */
export function siteSecrets(site: SiteConfig, fleet: FleetConfig): SiteSecrets {
  const at = `site ${site.siteId}:`;
  const lc = site.componentConfig?.[LOCAL_CONTROL_COMPONENT];
  const outputs = isObject(lc) ? lc['outputs'] : undefined;
  const where = new Map<string, string>();
  for (const k of SECRET_KEYS) {
    const channel = isObject(outputs) ? outputs[k.channel] : undefined;
    if (!isObject(channel)) continue;
    const key = `componentConfig.${LOCAL_CONTROL_COMPONENT} outputs.${k.channel}`;
    // The value is never quoted: it is a credential.
    if (channel[k.inlineKey] !== undefined) {
      throw new SecretsConfigError(
        `${at} ${key}.${k.inlineKey} is set: ${k.what} would be in plain text in the CloudFormation template, the deployment and every gateway's configuration. ` +
          `Store it in AWS Secrets Manager and name the secret's ARN in outputs.${k.channel}.${k.secretKey} instead (docs/cdk.md "Notifications and secrets")`,
      );
    }
    const id = channel[k.secretKey];
    if (id === undefined) continue;
    if (typeof id !== 'string') throw new SecretsConfigError(`${at} ${key}.${k.secretKey} must be a string: the secret's ARN, ${SECRET_ARN_FORM}`);
    const place = parseArn(id, 'secret');
    if (typeof place === 'string') throw new SecretsConfigError(`${at} ${key}.${k.secretKey} ${JSON.stringify(id)} ${place}`);
    if (!where.has(id)) where.set(id, `${at} ${key}.${k.secretKey}`);
  }
  // secretIds gives the order (and the once-each) of the policy LocalControl's merge carries.
  const secrets = secretIds((isObject(lc) ? lc : {}) as SecretNaming).map((arn): NamedArn => {
    const place = parseArn(arn, 'secret') as ArnPlace;
    return { arn, where: where.get(arn)!, ...place };
  });
  const keys = (site.secretsKmsKeyArns ?? []).map((arn, i): NamedArn => {
    const place = parseArn(arn, 'key');
    if (typeof place === 'string') throw new SecretsConfigError(`${at} secretsKmsKeyArns[${i}] ${JSON.stringify(arn)} ${place}`);
    return { arn, where: `${at} secretsKmsKeyArns[${i}]`, ...place };
  });
  if (keys.length > 0 && secrets.length === 0) {
    throw new SecretsConfigError(
      `${at} secretsKmsKeyArns is set, but componentConfig.${LOCAL_CONTROL_COMPONENT} names no secret (outputs.email.passwordSecret, outputs.webhook.bearerTokenSecret): ` +
        `the Token Exchange role would get a decrypt grant for nothing; remove the key or name the secrets it encrypts`,
    );
  }
  if (secrets.length > 0 && !fleet.awsComponents[SECRET_MANAGER_COMPONENT]) {
    throw new SecretsConfigError(
      `fleets.json: fleet ${fleet.name} gives no ${SECRET_MANAGER_COMPONENT} version in awsComponents, but its ${at.slice(0, -1)} names notification secrets (${secrets.map((s) => s.where.slice(at.length + 1)).join(', ')}): ` +
        `the secret manager component fetches them onto the gateway; add its version`,
    );
  }
  return { siteId: site.siteId, secrets, keys };
}

/** Every ARN of the app, secrets first (the reference the partition and region checks name), then keys. */
export function allNamedArns(sites: Iterable<SiteSecrets>): NamedArn[] {
  const list = [...sites];
  return [...list.flatMap((s) => s.secrets), ...list.flatMap((s) => s.keys)];
}

/** aws.greengrass.SecretManager's merge: exactly these secrets, at AWSCURRENT (no labels given). */
export function secretManagerMerge(secrets: SiteSecrets): string {
  return JSON.stringify({ cloudSecrets: secrets.secrets.map((s) => ({ arn: s.arn })) });
}
