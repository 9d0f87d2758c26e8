/** Fleets and sites from configuration: thing groups, per-site deployments and their policies. */
import fs from 'node:fs';
import path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { parseConfig, type AppConfig } from '../../cdk/lib/config';
import { realConfig, render, resourcesOf, synthTemplate, tempDir } from './helpers';

const config = realConfig();
const { template } = synthTemplate({ config });
const deployments = resourcesOf(template, 'AWS::GreengrassV2::Deployment');
const groups = resourcesOf(template, 'AWS::IoT::ThingGroup');
const versions = resourcesOf(template, 'AWS::GreengrassV2::ComponentVersion');
const versionIdOf = (name: string) => Object.entries(versions).find(([, r]) => render(r.Properties?.['InlineRecipe']).includes(`"ComponentName":"${name}"`))![0];

function deploymentFor(siteId: string) {
  const groupId = Object.entries(groups).find(([, g]) => (g.Properties?.['ThingGroupName'] as string).endsWith(`_${siteId}`))![0];
  const d = Object.values(deployments).find((x) => render(x.Properties?.['TargetArn']) === `<${groupId}.Arn>`);
  expect(d).toBeDefined();
  return d!;
}

describe('thing groups', () => {
  test('a fleet group per fleet and a site group under it per site', () => {
    for (const f of config.fleets) template.hasResourceProperties('AWS::IoT::ThingGroup', { ThingGroupName: `dcmms_${f.name}` });
    for (const s of config.sites) {
      template.hasResourceProperties('AWS::IoT::ThingGroup', {
        ThingGroupName: `dcmms_${s.fleet}_${s.siteId}`,
        ParentGroupName: Match.objectLike({ Ref: Match.stringLikeRegexp('FleetGroup') }),
      });
    }
    expect(Object.keys(groups)).toHaveLength(config.fleets.length + config.sites.length);
  });
});

describe.each(config.sites.map((s) => [s.siteId, s] as const))('deployment of site %s', (_id, site) => {
  const fleet = config.fleets.find((f) => f.name === site.fleet)!;
  const d = deploymentFor(site.siteId);
  const components = d.Properties!['Components'] as Record<string, { ComponentVersion: unknown; ConfigurationUpdate?: { Merge: string } }>;

  test('deploys the built bundle by reference to its component versions', () => {
    for (const name of ['com.dcmms.edge.Site', 'com.dcmms.edge.Health']) {
      expect(components[name]!.ComponentVersion).toEqual({ 'Fn::GetAtt': [versionIdOf(name), 'ComponentVersion'] });
    }
  });

  test('merges the site configuration (siteId, time zone, devices, thresholds, assets) into each dCMMS component', () => {
    const merge = JSON.parse(components['com.dcmms.edge.Health']!.ConfigurationUpdate!.Merge);
    expect(merge).toEqual({ siteId: site.siteId, timeZone: site.timeZone, devices: site.devices, thresholds: site.thresholds, assets: site.devices.map((x) => x['assetId']) });
  });

  test("declares every device's asset to the Processor, so no start-up order loses its telemetry", () => {
    const merge = JSON.parse(components['com.dcmms.edge.Processor']!.ConfigurationUpdate!.Merge) as { assets: string[] };
    expect(site.devices.length).toBeGreaterThan(0);
    expect(merge.assets).toEqual(site.devices.map((x) => x['assetId']));
  });

  test('carries the AWS-provided components; Stream Manager only where the fleet enables it', () => {
    expect(components['aws.greengrass.Nucleus']!.ComponentVersion).toBe(fleet.awsComponents['aws.greengrass.Nucleus']);
    expect(components['aws.greengrass.TokenExchangeService']).toBeDefined();
    expect(JSON.parse(components['aws.greengrass.LogManager']!.ConfigurationUpdate!.Merge).logsUploaderConfiguration.componentLogsConfigurationMap).toHaveProperty(['com.dcmms.edge.Health']);
    expect('aws.greengrass.StreamManager' in components).toBe(fleet.streamManager);
  });

  test('the nucleus spools to disk: aws.greengrass.DiskSpooler and mqtt.spooler selecting it, so QoS 1 messages survive a reboot during an outage', () => {
    expect(components['aws.greengrass.DiskSpooler']!.ComponentVersion).toBe(fleet.awsComponents['aws.greengrass.DiskSpooler']);
    const nucleus = JSON.parse(components['aws.greengrass.Nucleus']!.ConfigurationUpdate!.Merge);
    expect(nucleus).toEqual({ mqtt: { spooler: { storageType: 'Disk', pluginName: 'aws.greengrass.DiskSpooler', maxSizeInBytes: fleet.mqttSpoolMaxBytes } } });
  });

  test("the Uplink's S3 exporter: enabled with the data bucket, the fleet prefix and the stack's region where the fleet enables it, untouched elsewhere", () => {
    const merge = JSON.parse(render(components['com.dcmms.edge.Uplink']!.ConfigurationUpdate!.Merge));
    expect(typeof fleet.uplinkS3Export).toBe('boolean');
    if (!fleet.uplinkS3Export) {
      expect(merge).not.toHaveProperty('exporters');
      return;
    }
    // A Stream Manager fleet uploads through Stream Manager instead (test/cdk/stream-manager.test.ts).
    if (fleet.streamManager) {
      expect(merge.exporters.s3).toEqual({ enabled: false });
      return;
    }
    expect(merge.exporters).toEqual({ s3: { enabled: true, bucket: expect.stringMatching(/^<CloudData\w+>$/), prefix: `fleets/${fleet.name}/`, region: '<AWS::Region>' } });
    // The bucket is the data bucket, the one the Token Exchange role's per-thing grant is on.
    const bucketId = merge.exporters.s3.bucket.slice(1, -1) as string;
    expect(resourcesOf(template, 'AWS::S3::Bucket')[bucketId]).toBeDefined();
    expect(JSON.stringify(resourcesOf(template, 'AWS::IAM::Policy'))).toContain(`"${bucketId}","Arn"]},"/fleets/${fleet.name}/\${credentials-iot:ThingName}/*"`);
  });

  test('rolls back on failure, notifies components with a timeout, exponential rollout with PascalCase criteria, abort and timeout', () => {
    expect(d.Properties!['DeploymentPolicies']).toEqual({
      FailureHandlingPolicy: 'ROLLBACK',
      ComponentUpdatePolicy: { Action: 'NOTIFY_COMPONENTS', TimeoutInSeconds: fleet.componentUpdateTimeoutSeconds },
      ConfigurationValidationPolicy: { TimeoutInSeconds: fleet.configurationValidationTimeoutSeconds },
    });
    const job = d.Properties!['IotJobConfiguration'] as any;
    const criteria = job.JobExecutionsRolloutConfig.ExponentialRate.RateIncreaseCriteria;
    expect(Object.keys(criteria)).toHaveLength(1);
    expect(Object.keys(criteria)[0]).toMatch(/^NumberOf(Succeeded|Notified)Things$/);
    expect(job.JobExecutionsRolloutConfig.ExponentialRate.BaseRatePerMinute).toBe(fleet.rollout.baseRatePerMinute);
    expect(job.AbortConfig.CriteriaList).toEqual([
      { Action: 'CANCEL', FailureType: 'ALL', MinNumberOfExecutedThings: fleet.abort.minNumberOfExecutedThings, ThresholdPercentage: fleet.abort.failureThresholdPercentage },
    ]);
    expect(job.TimeoutConfig.InProgressTimeoutInMinutes).toBe(fleet.jobTimeoutMinutes);
    expect(d.DeletionPolicy).toBe('Retain');
  });
});

describe('configuration is data, validated before synth', () => {
  const raw = () => JSON.parse(JSON.stringify({ fleets: Object.fromEntries(config.fleets.map(({ name, ...f }) => [name, f])), sites: config.sites }));

  test('adding a site entry adds its group, policy and deployment', () => {
    const doc = raw();
    const extra = { ...doc.sites[0], siteId: 'plant-z', devices: [] };
    const cfg: AppConfig = parseConfig({ fleets: doc.fleets }, { sites: [...doc.sites, extra] });
    const t = synthTemplate({ config: cfg }).template;
    t.hasResourceProperties('AWS::IoT::ThingGroup', { ThingGroupName: `dcmms_${extra.fleet}_plant-z` });
    t.hasResourceProperties('AWS::IoT::Policy', { PolicyName: `dcmms_${extra.fleet}_plant-z_core` });
    t.resourceCountIs('AWS::GreengrassV2::Deployment', config.sites.length + 1);
  });

  test('rejects an unknown fleet, a bad time zone, an underscore in a site id and an invalid component config', () => {
    const doc = raw();
    const site = doc.sites[0];
    expect(() => parseConfig({ fleets: doc.fleets }, { sites: [{ ...site, fleet: 'nope' }] })).toThrow(/fleet nope is not in/);
    expect(() => parseConfig({ fleets: doc.fleets }, { sites: [{ ...site, timeZone: 'Mars/Olympus' }] })).toThrow(/not an IANA time zone/);
    expect(() => parseConfig({ fleets: doc.fleets }, { sites: [{ ...site, siteId: 'a_b' }] })).toThrow(/siteId/);
    const bad = parseConfig({ fleets: doc.fleets }, { sites: [{ ...site, componentConfig: { 'com.dcmms.edge.Health': { reportIntervalMs: 5 } } }] });
    expect(() => synthTemplate({ config: bad })).toThrow(/com.dcmms.edge.Health is invalid: .*reportIntervalMs/);
  });

  test('accessControl in a site\'s component configuration fails the synth, naming the site and component (it would bypass the recipes\' least-privilege policies)', () => {
    const doc = raw();
    const site = doc.sites[0];
    const grab = { 'aws.greengrass.ipc.pubsub': { 'x:pubsub:1': { policyDescription: 'everything', operations: ['*'], resources: ['*'] } } };
    for (const [component, key] of [['com.dcmms.edge.Health', 'accessControl'], ['com.dcmms.edge.Uplink', 'AccessControl']] as const) {
      const cfg = parseConfig({ fleets: doc.fleets }, { sites: [{ ...site, componentConfig: { [component]: { [key]: grab } } }] });
      expect(() => synthTemplate({ config: cfg })).toThrow(new RegExp(`site ${site.siteId}: .*${component.replace(/\./g, '\\.')}.*accessControl`));
    }
    // Everything else in componentConfig still merges.
    const ok = parseConfig({ fleets: doc.fleets }, { sites: [{ ...site, componentConfig: { 'com.dcmms.edge.Health': { logLevel: 'debug' } } }] });
    expect(() => synthTemplate({ config: ok })).not.toThrow();
  });

  test('a site cannot move the fleet-managed S3 bucket, prefix or region; its other S3 settings merge deep and are validated against the Uplink schema', () => {
    const doc = raw();
    const fleetName = config.fleets.find((f) => f.uplinkS3Export)!.name;
    // The direct S3 exporter: a fleet that does not go through Stream Manager.
    doc.fleets[fleetName].streamManager = false;
    const site = doc.sites.find((x: { fleet: string }) => x.fleet === fleetName);
    const withUplink = (s3: Record<string, unknown>) => parseConfig({ fleets: doc.fleets }, { sites: [{ ...site, componentConfig: { 'com.dcmms.edge.Uplink': { exporters: { s3 } } } }] });
    for (const key of ['bucket', 'prefix', 'region']) {
      expect(() => synthTemplate({ config: withUplink({ [key]: 'elsewhere/' }) })).toThrow(new RegExp(`site ${site.siteId}: .*com\\.dcmms\\.edge\\.Uplink.*exporters\\.s3\\.${key}.*${fleetName}`));
    }
    expect(() => synthTemplate({ config: withUplink({ concurrency: 1000 }) })).toThrow(/com\.dcmms\.edge\.Uplink is invalid: .*concurrency/);
    const t = synthTemplate({ config: withUplink({ concurrency: 8 }) }).template;
    const d = Object.values(resourcesOf(t, 'AWS::GreengrassV2::Deployment')).find((x) => (x.Properties!['Tags'] as Record<string, string>)['dcmms:site'] === site.siteId)!;
    const merge = JSON.parse(render((d.Properties!['Components'] as any)['com.dcmms.edge.Uplink'].ConfigurationUpdate.Merge));
    expect(merge.exporters.s3).toEqual({ enabled: true, bucket: expect.stringMatching(/^<CloudData\w+>$/), prefix: `fleets/${fleetName}/`, region: '<AWS::Region>', concurrency: 8 });
  });

  test('a fleet without uplinkS3Export gets neither the exporter configuration nor an S3 write grant; with it, both', () => {
    const doc = raw();
    const name = config.fleets[0]!.name;
    for (const on of [false, true]) {
      const fleets = structuredClone(doc.fleets);
      fleets[name].uplinkS3Export = on;
      fleets[name].streamManager = false; // the direct exporter (Stream Manager fleets: test/cdk/stream-manager.test.ts)
      const t = synthTemplate({ config: parseConfig({ fleets }, { sites: doc.sites }) }).template;
      for (const d of Object.values(resourcesOf(t, 'AWS::GreengrassV2::Deployment')).filter((x) => (x.Properties!['Tags'] as Record<string, string>)['dcmms:fleet'] === name)) {
        const merge = JSON.parse(render((d.Properties!['Components'] as any)['com.dcmms.edge.Uplink'].ConfigurationUpdate.Merge));
        expect(merge.exporters?.s3?.enabled).toBe(on ? true : undefined);
      }
      const grants = JSON.stringify(resourcesOf(t, 'AWS::IAM::Policy')).split(`/fleets/${name}/\${credentials-iot:ThingName}/*`).length - 1;
      expect({ on, grants }).toEqual({ on, grants: on ? 1 : 0 });
    }
  });

  test('the disk spooler needs a DiskSpooler version and a nucleus of at least 2.11.0', () => {
    const doc = raw();
    const name = config.fleets[0]!.name;
    const old = structuredClone(doc.fleets);
    old[name].awsComponents['aws.greengrass.Nucleus'] = '2.10.3';
    expect(() => parseConfig({ fleets: old }, { sites: doc.sites })).toThrow(new RegExp(`fleet ${name} .*aws\\.greengrass\\.DiskSpooler.*2\\.11\\.0`));
    const none = structuredClone(doc.fleets);
    delete none[name].awsComponents['aws.greengrass.DiskSpooler'];
    expect(() => parseConfig({ fleets: none }, { sites: doc.sites })).toThrow(/aws\.greengrass\.DiskSpooler/);
  });

  test('a fleet pinned to a recorded older bundle deploys it by version string (rollback)', () => {
    const doc = raw();
    const fleetName = config.sites[0]!.fleet;
    doc.fleets[fleetName].bundleVersion = '0.0.9';
    const cfg = parseConfig({ fleets: doc.fleets }, { sites: doc.sites });
    const { stack } = synthTemplate({ config: realConfig() }); // its lock holds the built versions
    const lock = { components: { ...stack.lock.components, 'com.dcmms.edge.Site@0.0.9': { recipe: 'x', artifacts: {}, dependencies: { 'com.dcmms.edge.Health': '0.0.9' }, assets: [] }, 'com.dcmms.edge.Health@0.0.9': { recipe: 'y', artifacts: {}, dependencies: {}, assets: ['old.zip'] } } };
    const lockFile = path.join(tempDir('pin'), 'lock.json');
    fs.writeFileSync(lockFile, JSON.stringify(lock));
    const t = synthTemplate({ config: cfg, lockFile, lockMode: 'verify' }).template;
    const pinned = Object.values(resourcesOf(t, 'AWS::GreengrassV2::Deployment')).find((x) => (x.Properties!['Tags'] as any)['dcmms:fleet'] === fleetName)!;
    expect((pinned.Properties!['Components'] as any)['com.dcmms.edge.Site'].ComponentVersion).toBe('0.0.9');
    expect((pinned.Properties!['Components'] as any)['com.dcmms.edge.Health'].ComponentVersion).toBe('0.0.9');
    // The old version's artifacts stay readable by that fleet's gateways.
    expect(JSON.stringify(t.toJSON())).toContain('/old.zip');
  });
});
