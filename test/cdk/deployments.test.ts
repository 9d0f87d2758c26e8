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

  test('merges the site configuration (siteId, time zone, devices, thresholds) into each dCMMS component', () => {
    const merge = JSON.parse(components['com.dcmms.edge.Health']!.ConfigurationUpdate!.Merge);
    expect(merge).toEqual({ siteId: site.siteId, timeZone: site.timeZone, devices: site.devices, thresholds: site.thresholds });
  });

  test('carries the AWS-provided components; Stream Manager only where the fleet enables it', () => {
    expect(components['aws.greengrass.Nucleus']!.ComponentVersion).toBe(fleet.awsComponents['aws.greengrass.Nucleus']);
    expect(components['aws.greengrass.TokenExchangeService']).toBeDefined();
    expect(JSON.parse(components['aws.greengrass.LogManager']!.ConfigurationUpdate!.Merge).logsUploaderConfiguration.componentLogsConfigurationMap).toHaveProperty(['com.dcmms.edge.Health']);
    expect('aws.greengrass.StreamManager' in components).toBe(fleet.streamManager);
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
