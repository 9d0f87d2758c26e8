/**
 * Pre-provisioning hook for fleet provisioning by claim (awsdocs iot pre-provisioning-hook.html,
 * payload version 2020-04-01). AWS IoT calls it before provisioning a device; it allows only
 * sites on the fleet's allow-list and thing names of that site (`dcmms_<fleet>_<site>_<serial>`),
 * so a leaked claim certificate cannot register devices for other sites or arbitrary names.
 *
 * Inline code (no bundling, no Docker: synth stays offline and needs no container runtime). The
 * allow-list comes from sites.json through an environment variable, so adding a site is a config
 * entry plus `cdk deploy`.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The handler source, exported so a test can run it. Plain JS for the Lambda Node.js runtime. */
export const HOOK_SOURCE = `'use strict';
const SITES = new Set(JSON.parse(process.env.ALLOWED_SITES || '[]'));
const PREFIX = process.env.THING_PREFIX || '';
const SERIAL = /^[A-Za-z0-9-]{1,64}$/;
exports.handler = async (event) => {
  const p = (event && event.parameters) || {};
  const siteId = typeof p.SiteId === 'string' ? p.SiteId : '';
  const thingName = typeof p.ThingName === 'string' ? p.ThingName : '';
  const sitePrefix = PREFIX + siteId + '_';
  let reason = 'ok';
  if (!SITES.has(siteId)) reason = 'site not on the allow-list';
  else if (!thingName.startsWith(sitePrefix) || !SERIAL.test(thingName.slice(sitePrefix.length))) reason = 'thing name must be ' + sitePrefix + '<serial>';
  const allowProvisioning = reason === 'ok';
  console.log(JSON.stringify({ msg: 'pre-provisioning', siteId, thingName, allowProvisioning, reason, certificateId: event && event.certificateId }));
  return { allowProvisioning };
};
`;

export interface HookProps {
  readonly fleet: string;
  readonly fleetThingPrefix: string;
  readonly siteIds: readonly string[];
  readonly templateName: string;
}

export class PreProvisioningHook extends Construct {
  readonly fn: lambda.Function;

  constructor(scope: Construct, id: string, props: HookProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.DESTROY });
    // Own role with only this log group, instead of AWSLambdaBasicExecutionRole (all log groups).
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `dCMMS ${props.fleet} pre-provisioning hook: write its own log group`,
    });
    this.fn = new lambda.Function(this, 'Function', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline(HOOK_SOURCE),
      timeout: Duration.seconds(5),
      memorySize: 128,
      role,
      logGroup,
      description: `dCMMS ${props.fleet}: allow fleet provisioning only for listed sites`,
      environment: { ALLOWED_SITES: JSON.stringify([...props.siteIds].sort()), THING_PREFIX: props.fleetThingPrefix },
    });
    logGroup.grantWrite(role);
    const stack = Stack.of(this);
    this.fn.addPermission('IotInvoke', {
      principal: new iam.ServicePrincipal('iot.amazonaws.com'),
      sourceAccount: stack.account,
      // Only this fleet's template may call the hook (confused-deputy protection).
      sourceArn: stack.formatArn({ service: 'iot', resource: 'provisioningtemplate', resourceName: props.templateName }),
    });
  }
}
