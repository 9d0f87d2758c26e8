/**
 * Stream Manager fleets (cdk/lib/stream-manager.ts, docs/uplink.md "Stream Manager"): the Uplink's
 * configuration for the exports, the switch component that makes only those fleets' Uplink depend on
 * aws.greengrass.StreamManager, and the Token Exchange role's grants: exactly what each export calls,
 * on exactly its resources, nothing for fleets without (least-privilege style of least-privilege.test.ts).
 */
import type { Template } from 'aws-cdk-lib/assertions';
import { parseConfig, type AppConfig } from '../../cdk/lib/config';
import { SM_S3_ACTIONS, UPLINK_SM_SWITCH } from '../../cdk/lib/stream-manager';
import { asArray, rawConfig, realConfig, render, resourcesOf, synthTemplate } from './helpers';

interface Stmt {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

/** The real fleets, plus a Kinesis stream on the Stream Manager fleet. */
function withKinesis(stream: string): { config: AppConfig; fleet: string } {
  const doc = rawConfig();
  const name = Object.keys(doc.fleets).find((n) => doc.fleets[n].streamManager)!;
  doc.fleets[name].streamManagerExports = { kinesisStreamName: stream };
  return { config: parseConfig({ fleets: doc.fleets }, { sites: doc.sites }), fleet: name };
}

const config = realConfig();
const smFleet = config.fleets.find((f) => f.streamManager)!;
const plainFleet = config.fleets.find((f) => !f.streamManager)!;
const { template } = synthTemplate({ config });
const kinesis = withKinesis('dcmms-telemetry');
const kinesisTemplate = synthTemplate({ config: kinesis.config }).template;

function roleStatements(t: Template, fleet: string): Stmt[] {
  const all = resourcesOf(t);
  const [roleId] = Object.entries(resourcesOf(t, 'AWS::IAM::Role')).find(([id]) => id.startsWith(`Fleet${fleet.replace(/-/g, '')}TokenExchangeRole`))!;
  return Object.values(all)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties?.['Roles'] ?? []).includes(roleId))
    .flatMap((r) => (r.Properties!['PolicyDocument'] as { Statement: Stmt[] }).Statement);
}
const exportStatements = (t: Template, fleet: string): Stmt[] =>
  roleStatements(t, fleet).filter((s) => asArray(s.Action).some((a) => a.startsWith('iotsitewise:') || a.startsWith('kinesis:') || (a.startsWith('s3:') && a !== 's3:GetObject')));

function deploymentOf(t: Template, siteId: string): Record<string, { ComponentVersion: unknown; ConfigurationUpdate?: { Merge: unknown } }> {
  const groups = resourcesOf(t, 'AWS::IoT::ThingGroup');
  const groupId = Object.entries(groups).find(([, g]) => (g.Properties?.['ThingGroupName'] as string).endsWith(`_${siteId}`))![0];
  const d = Object.values(resourcesOf(t, 'AWS::GreengrassV2::Deployment')).find((x) => render(x.Properties?.['TargetArn']) === `<${groupId}.Arn>`)!;
  return d.Properties!['Components'] as Record<string, { ComponentVersion: unknown; ConfigurationUpdate?: { Merge: unknown } }>;
}
const recipes = Object.values(resourcesOf(template, 'AWS::GreengrassV2::ComponentVersion')).map((r) => JSON.parse(render(r.Properties?.['InlineRecipe'])) as Record<string, any>);

test('the real configuration has a fleet with Stream Manager and one without', () => {
  expect(smFleet.uplinkS3Export).toBe(true);
  expect(plainFleet).toBeDefined();
});

describe('Token Exchange role grants', () => {
  test('a Stream Manager fleet: the S3 task actions on its per-thing prefix, SiteWise BatchPutAssetPropertyValue on time series; nothing else for the exports', () => {
    const stmts = exportStatements(template, smFleet.name);
    expect(stmts.map((s) => s.Sid).sort()).toEqual(['StreamManagerS3Export', 'StreamManagerSiteWiseExport']);
    const s3 = stmts.find((s) => s.Sid === 'StreamManagerS3Export')!;
    expect(s3.Effect).toBe('Allow');
    expect(asArray(s3.Action).sort()).toEqual([...SM_S3_ACTIONS].sort());
    expect(asArray(s3.Action).sort()).toEqual(['s3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:PutObject']);
    expect(asArray(s3.Resource).map(render)).toEqual([expect.stringMatching(new RegExp(`^<Cloud\\w*Data\\w*\\.Arn>/fleets/${smFleet.name}/\\$\\{credentials-iot:ThingName\\}/\\*$`))]);
    const sw = stmts.find((s) => s.Sid === 'StreamManagerSiteWiseExport')!;
    expect(asArray(sw.Action)).toEqual(['iotsitewise:BatchPutAssetPropertyValue']);
    expect(asArray(sw.Resource).map(render)).toEqual(['arn:<AWS::Partition>:iotsitewise:<AWS::Region>:<AWS::AccountId>:time-series/*']);
    // No Kinesis unless a stream is configured.
    expect(stmts.filter((s) => asArray(s.Action).some((a) => a.startsWith('kinesis:')))).toEqual([]);
  });

  test('a fleet without Stream Manager gets none of the export actions', () => {
    const stmts = roleStatements(template, plainFleet.name);
    expect(stmts.filter((s) => asArray(s.Action).some((a) => /^(iotsitewise|kinesis):/.test(a) || a === 's3:AbortMultipartUpload' || a === 's3:ListMultipartUploadParts'))).toEqual([]);
  });

  test('Kinesis enabled: PutRecords on exactly that stream, and only on that fleet', () => {
    const stmts = exportStatements(kinesisTemplate, kinesis.fleet).filter((s) => asArray(s.Action).some((a) => a.startsWith('kinesis:')));
    expect(stmts).toHaveLength(1);
    expect(asArray(stmts[0]!.Action)).toEqual(['kinesis:PutRecords']);
    expect(asArray(stmts[0]!.Resource).map(render)).toEqual(['arn:<AWS::Partition>:kinesis:<AWS::Region>:<AWS::AccountId>:stream/dcmms-telemetry']);
    for (const f of kinesis.config.fleets.filter((x) => x.name !== kinesis.fleet)) {
      expect(exportStatements(kinesisTemplate, f.name).filter((s) => asArray(s.Action).some((a) => a.startsWith('kinesis:')))).toEqual([]);
    }
  });
});

describe('the Uplink depends on Stream Manager on Stream Manager fleets only', () => {
  test("the Uplink's published recipe depends (SOFT) on the switch, either version; the switch's 2.0.0 depends on Stream Manager, 1.0.0 on nothing", () => {
    const uplink = recipes.find((r) => r['ComponentName'] === 'com.dcmms.edge.Uplink')!;
    expect(uplink['ComponentDependencies'][UPLINK_SM_SWITCH]).toEqual({ VersionRequirement: '>=1.0.0 <3.0.0', DependencyType: 'SOFT' });
    expect(uplink['ComponentDependencies']['aws.greengrass.StreamManager']).toBeUndefined();
    const on = recipes.find((r) => r['ComponentName'] === UPLINK_SM_SWITCH && r['ComponentVersion'] === '2.0.0')!;
    const off = recipes.find((r) => r['ComponentName'] === UPLINK_SM_SWITCH && r['ComponentVersion'] === '1.0.0')!;
    expect(on['ComponentDependencies']).toEqual({ 'aws.greengrass.StreamManager': { VersionRequirement: '>=2.0.0 <3.0.0', DependencyType: 'SOFT' } });
    expect(off['ComponentDependencies']).toBeUndefined();
    expect(JSON.stringify([on, off])).not.toMatch(/Artifacts|Lifecycle/);
  });

  test.each(config.sites.map((s) => [s.siteId, s.fleet] as const))('site %s deploys the switch at its fleet\'s version', (siteId, fleetName) => {
    const fleet = config.fleets.find((f) => f.name === fleetName)!;
    const components = deploymentOf(template, siteId);
    expect(components[UPLINK_SM_SWITCH]!.ComponentVersion).toBe(fleet.streamManager ? '2.0.0' : '1.0.0');
    expect('aws.greengrass.StreamManager' in components).toBe(fleet.streamManager);
  });
});

describe("the Uplink's configuration", () => {
  test('a Stream Manager fleet: S3 through Stream Manager to the data bucket and fleet prefix (the direct exporter off), SiteWise for 1m and 15m, routes naming them', () => {
    const site = config.sites.find((s) => s.fleet === smFleet.name)!;
    const merge = JSON.parse(render(deploymentOf(template, site.siteId)['com.dcmms.edge.Uplink']!.ConfigurationUpdate!.Merge));
    expect(merge.exporters.s3).toEqual({ enabled: false });
    expect(merge.exporters.streamManager).toEqual({
      enabled: true,
      s3: { enabled: true, bucket: expect.stringMatching(/^<Cloud\w*Data\w*>$/), prefix: `fleets/${smFleet.name}/` },
      sitewise: { enabled: true },
      kinesis: { enabled: false },
    });
    expect(merge.routes).toEqual({
      alarms: ['iotcore', 'streammanager-s3'],
      events: ['iotcore', 'streammanager-s3'],
      '1m': ['streammanager-s3', 'streammanager-sitewise'],
      '15m': ['iotcore', 'streammanager-s3', 'streammanager-sitewise'],
      '1d': ['iotcore', 'streammanager-s3'],
      health: ['streammanager-s3'],
    });
  });

  test('a fleet without Stream Manager: no Stream Manager configuration', () => {
    const site = config.sites.find((s) => s.fleet === plainFleet.name)!;
    const u = deploymentOf(template, site.siteId)['com.dcmms.edge.Uplink']!;
    expect(render(u.ConfigurationUpdate!.Merge)).not.toMatch(/streamManager|streammanager/);
  });

  test('a site may turn SiteWise off or re-route a class, but not move the bucket, prefix or Kinesis stream', () => {
    const doc = rawConfig();
    const site = doc.sites.find((s) => s.fleet === smFleet.name)!;
    const withUplink = (cfg: Record<string, unknown>) => parseConfig({ fleets: doc.fleets }, { sites: [{ ...site, componentConfig: { 'com.dcmms.edge.Uplink': cfg } }] });
    expect(() => synthTemplate({ config: withUplink({ exporters: { streamManager: { s3: { bucket: 'elsewhere' } } } }) })).toThrow(new RegExp(`site ${site.siteId}: .*exporters\\.streamManager\\.s3\\.bucket.*${smFleet.name}`));
    const t = synthTemplate({ config: withUplink({ exporters: { streamManager: { sitewise: { enabled: false } } }, routes: { '1m': ['streammanager-s3'] } }) }).template;
    const merge = JSON.parse(render(deploymentOf(t, site.siteId)['com.dcmms.edge.Uplink']!.ConfigurationUpdate!.Merge));
    expect(merge.exporters.streamManager.sitewise).toEqual({ enabled: false });
    expect(merge.routes['1m']).toEqual(['streammanager-s3']);
  });

  test('streamManagerExports without streamManager fails the configuration', () => {
    const doc = rawConfig();
    doc.fleets[plainFleet.name].streamManagerExports = { sitewise: true };
    expect(() => parseConfig({ fleets: doc.fleets }, { sites: doc.sites })).toThrow(/streamManagerExports but not streamManager/);
  });
});
