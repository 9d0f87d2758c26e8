/**
 * A site's notification secrets set up from CDK (docs/cdk.md "Notifications and secrets"): the
 * IPC policy generated for LocalControl, aws.greengrass.SecretManager with the secrets' ARNs, the
 * checks at synth. The Token Exchange role's grants are in least-privilege.test.ts.
 */
import type { Template } from 'aws-cdk-lib/assertions';
import { secretAccessControl } from '../../components/local-control/notify-options';
import { parseConfig } from '../../cdk/lib/config';
import { configWithSecrets, kmsKeyArn, notifyOutputs, rawConfig, realConfig, render, resourcesOf, secretArn, synthTemplate } from './helpers';

const LC = 'com.dcmms.edge.LocalControl';
const SM = 'aws.greengrass.SecretManager';
const RESET = ['/accessControl/aws.greengrass.SecretManager'];
const SMTP = secretArn('dcmms/plant-a/smtp-AbCdEf');
const HOOK = secretArn('dcmms/plant-a/webhook-GhIjKl');

type Components = Record<string, { ComponentVersion: unknown; ConfigurationUpdate?: { Merge: unknown; Reset?: string[] } }>;

function componentsOf(t: Template, site: string): Components {
  const d = Object.values(resourcesOf(t, 'AWS::GreengrassV2::Deployment')).find((x) => (x.Properties!['Tags'] as Record<string, string>)['dcmms:site'] === site);
  expect(d).toBeDefined();
  return d!.Properties!['Components'] as Components;
}
const mergeOf = (c: Components, name: string) => JSON.parse(render(c[name]!.ConfigurationUpdate!.Merge)) as Record<string, any>;

type Rules = Record<string, { Assertions: { Assert: unknown; AssertDescription: string }[] }>;
/**
 * The template's rules other than CDK's own CheckBootstrapVersion, which the default stack
 * synthesizer adds to every template (it refuses a deployment with an outdated bootstrap stack).
 */
function ourRules(t: Template): Rules {
  const all = (t.toJSON()['Rules'] ?? {}) as Rules;
  expect(all).toHaveProperty('CheckBootstrapVersion'); // the exclusion below excludes something real
  return Object.fromEntries(Object.entries(all).filter(([id]) => id !== 'CheckBootstrapVersion'));
}

/** Change the real configuration's first site (and only it) with `change`; parse it. */
function withFirstSite(change: (site: any, doc: ReturnType<typeof rawConfig>) => void) {
  const doc = rawConfig();
  change(doc.sites[0], doc);
  return parseConfig({ fleets: doc.fleets }, { sites: doc.sites });
}
const localControl = (outputs: Record<string, unknown>, more: Record<string, unknown> = {}) => ({ [LC]: { outputs, ...more } });

describe('a site whose LocalControl names secrets', () => {
  const { config, siteId, fleet } = configWithSecrets([SMTP, HOOK]);
  const { template } = synthTemplate({ config });
  const components = componentsOf(template, siteId);

  test("LocalControl's merge carries exactly secretAccessControl of its merged configuration: GetSecretValue on those two ARNs, no wildcard", () => {
    const merge = mergeOf(components, LC);
    expect(merge['accessControl']).toEqual(secretAccessControl({ outputs: notifyOutputs(SMTP, HOOK) }));
    expect(merge['accessControl']).toEqual({
      [SM]: { [`${LC}:secrets:1`]: { policyDescription: expect.any(String), operations: ['aws.greengrass#GetSecretValue'], resources: [SMTP, HOOK] } },
    });
    expect(JSON.stringify(merge['accessControl'])).not.toContain('*');
    // The site's own keys are merged as before.
    expect(merge['outputs']).toEqual(notifyOutputs(SMTP, HOOK));
  });

  test('the secret manager policy is reset before the merge, so a policy an earlier revision merged does not outlive its secrets', () => {
    expect(components[LC]!.ConfigurationUpdate!.Reset).toEqual(RESET);
  });

  test('the deployment carries aws.greengrass.SecretManager at the fleet version, with exactly those ARNs as cloudSecrets', () => {
    const version = config.fleets.find((f) => f.name === fleet)!.awsComponents[SM];
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(components[SM]!.ComponentVersion).toBe(version);
    expect(mergeOf(components, SM)).toEqual({ cloudSecrets: [{ arn: SMTP }, { arn: HOOK }] });
  });

  test('a site without secrets gets neither the component nor a policy (its LocalControl still resets one)', () => {
    const other = config.sites.find((s) => s.siteId !== siteId)!;
    const c = componentsOf(template, other.siteId);
    expect(SM in c).toBe(false);
    expect(mergeOf(c, LC)).not.toHaveProperty('accessControl');
    expect(c[LC]!.ConfigurationUpdate!.Reset).toEqual(RESET);
    // Nor any other component of either site: the policy is LocalControl's alone.
    for (const [name, spec] of [...Object.entries(components), ...Object.entries(c)]) {
      if (name === LC || !spec.ConfigurationUpdate) continue;
      expect({ name, accessControl: render(spec.ConfigurationUpdate.Merge).includes('accessControl') }).toEqual({ name, accessControl: false });
    }
  });

  test('the template holds ARNs only: no secret value key anywhere', () => {
    const json = JSON.stringify(template.toJSON());
    expect(json).toContain(SMTP);
    expect(json).not.toMatch(/\\*"(password|bearerToken)\\*"\s*:/);
  });

  test("a CloudFormation rule holds the environment-agnostic stack to the secrets' partition and region", () => {
    const rules = ourRules(template);
    expect(Object.keys(rules)).toHaveLength(1);
    const [rule] = Object.values(rules);
    expect(rule!.Assertions.map((a) => a.Assert)).toEqual([{ 'Fn::Equals': [{ Ref: 'AWS::Partition' }, 'aws'] }, { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'eu-west-1'] }]);
    for (const a of rule!.Assertions) expect(a.AssertDescription).toMatch(/secret/);
  });
});

test('one secret named twice (the SMTP password and the webhook token) is fetched, allowed and granted once', () => {
  const { config, siteId, fleet } = configWithSecrets([SMTP, SMTP]);
  const { template } = synthTemplate({ config });
  const c = componentsOf(template, siteId);
  expect(mergeOf(c, SM)).toEqual({ cloudSecrets: [{ arn: SMTP }] });
  expect(mergeOf(c, LC)['accessControl'][SM][`${LC}:secrets:1`].resources).toEqual([SMTP]);
  const reads = Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
    .filter((p) => JSON.stringify(p.Properties!['Roles']).includes(`Fleet${fleet.replace(/-/g, '')}TokenExchangeRole`))
    .flatMap((p) => (p.Properties!['PolicyDocument'] as { Statement: { Action: unknown; Resource: unknown }[] }).Statement)
    .filter((st) => JSON.stringify(st.Action).includes('secretsmanager:'));
  expect(reads.map((st) => st.Resource)).toEqual([SMTP]);
});

test('the real configuration names no secrets: no secret manager, no policy, no rule', () => {
  const { template } = synthTemplate({ config: realConfig() });
  expect(ourRules(template)).toEqual({});
  for (const s of realConfig().sites) {
    const c = componentsOf(template, s.siteId);
    expect(SM in c).toBe(false);
    expect(mergeOf(c, LC)).not.toHaveProperty('accessControl');
  }
});

describe('what a site writes itself is still refused', () => {
  test('an accessControl of its own, beside secrets, fails the synth', () => {
    const cfg = withFirstSite((s) => {
      s.componentConfig = localControl(notifyOutputs(SMTP), { accessControl: { [SM]: { mine: { operations: ['aws.greengrass#GetSecretValue'], resources: ['*'] } } } });
    });
    expect(() => synthTemplate({ config: cfg })).toThrow(new RegExp(`site ${cfg.sites[0]!.siteId}: configuration for com\\.dcmms\\.edge\\.LocalControl sets accessControl`));
  });

  test.each([
    ['outputs.email.password', { email: { host: 'smtp.plant.example', port: 587, user: 'gateway', password: 'hunter2', from: 'gateway@plant.example', to: ['ops@example.com'] } }, 'passwordSecret'],
    ['outputs.webhook.bearerToken', { webhook: { url: 'https://alerts.example/hook', bearerToken: 'hunter2' } }, 'bearerTokenSecret'],
  ])('an inline secret value (%s) fails the synth: it would be in the template', (key, outputs, instead) => {
    const cfg = withFirstSite((s) => {
      s.componentConfig = localControl(outputs);
    });
    expect(() => synthTemplate({ config: cfg })).toThrow(new RegExp(`site ${cfg.sites[0]!.siteId}: .*${key.replace(/\./g, '\\.')}.*${instead}`));
    // The message names the key, never the value.
    let message = '';
    try {
      synthTemplate({ config: cfg });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).not.toContain('hunter2');
  });
});

describe('secret ARNs are checked at synth', () => {
  const EXPECTED = 'arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>';
  test.each([
    ['a secret name', 'dcmms/plant-a/smtp'],
    ['a partial ARN (without the six characters Secrets Manager appends)', secretArn('dcmms/plant-a/smtp')],
    ['an ARN of another service', 'arn:aws:ssm:eu-west-1:111122223333:parameter/smtp-AbCdEf'],
    ['an unknown partition', secretArn('smtp-AbCdEf', 'eu-west-1', 'aws-xx')],
    ['a region of another partition', secretArn('smtp-AbCdEf', 'cn-north-1', 'aws')],
    ['a malformed account', 'arn:aws:secretsmanager:eu-west-1:1111:secret:smtp-AbCdEf'],
  ])('%s fails, naming the site, the key and the form expected', (_what, arn) => {
    const { config, siteId } = configWithSecrets([arn]);
    let message = '';
    try {
      synthTemplate({ config });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain(`site ${siteId}: componentConfig.${LC} outputs.email.passwordSecret ${JSON.stringify(arn)}`);
    expect(message).toContain(EXPECTED);
  });

  test('a wildcard in a secret ARN fails', () => {
    const { config } = configWithSecrets([secretArn('dcmms/*')]);
    expect(() => synthTemplate({ config })).toThrow(/outputs\.email\.passwordSecret/);
  });

  test('ARNs of GovCloud and China partitions are well formed in their own regions', () => {
    for (const [partition, region] of [['aws-us-gov', 'us-gov-west-1'], ['aws-cn', 'cn-north-1']] as const) {
      const { config } = configWithSecrets([secretArn('smtp-AbCdEf', region, partition)]);
      const rules = ourRules(synthTemplate({ config }).template);
      expect(Object.keys(rules)).toHaveLength(1);
      expect(Object.values(rules)[0]!.Assertions.map((a) => a.Assert)).toEqual([{ 'Fn::Equals': [{ Ref: 'AWS::Partition' }, partition] }, { 'Fn::Equals': [{ Ref: 'AWS::Region' }, region] }]);
    }
  });

  test('secrets in two regions fail: one stack deploys to one region, and gateways read secrets from theirs', () => {
    const doc = rawConfig();
    doc.sites[0].componentConfig = localControl(notifyOutputs(SMTP));
    doc.sites[1].componentConfig = localControl(notifyOutputs(secretArn('dcmms/farm-b/smtp-AbCdEf', 'us-east-1')));
    const cfg = parseConfig({ fleets: doc.fleets }, { sites: doc.sites });
    expect(() => synthTemplate({ config: cfg })).toThrow(new RegExp(`site ${doc.sites[1].siteId}: .*us-east-1.*site ${doc.sites[0].siteId}.*eu-west-1`));
  });

  test('a stack deployed to a known region checks the secrets against it at synth, and needs no rule', () => {
    const { config, siteId } = configWithSecrets([SMTP]);
    const same = synthTemplate({ config, env: { region: 'eu-west-1' } }).template;
    expect(ourRules(same)).toEqual({});
    expect(() => synthTemplate({ config, env: { region: 'us-east-1' } })).toThrow(new RegExp(`site ${siteId}: .*eu-west-1.*stack.*us-east-1`));
    expect(() => synthTemplate({ config, env: { region: 'cn-north-1' } })).toThrow(new RegExp(`site ${siteId}: .*partition aws.*aws-cn`));
  });

  test('a fleet without an aws.greengrass.SecretManager version fails when one of its sites names secrets', () => {
    const cfg = withFirstSite((s, doc) => {
      s.componentConfig = localControl(notifyOutputs(SMTP));
      delete doc.fleets[s.fleet].awsComponents[SM];
    });
    expect(() => synthTemplate({ config: cfg })).toThrow(new RegExp(`fleet ${cfg.sites[0]!.fleet}.*aws\\.greengrass\\.SecretManager.*site ${cfg.sites[0]!.siteId}`));
  });
});

describe('customer-managed KMS keys (secretsKmsKeyArns)', () => {
  test('a key needs secrets to decrypt', () => {
    const cfg = withFirstSite((s) => {
      s.secretsKmsKeyArns = [kmsKeyArn()];
    });
    expect(() => synthTemplate({ config: cfg })).toThrow(new RegExp(`site ${cfg.sites[0]!.siteId}: secretsKmsKeyArns .*names no secret`));
  });

  test.each([
    ['an alias ARN', 'arn:aws:kms:eu-west-1:111122223333:alias/dcmms'],
    ['a key id', '1234abcd-12ab-34cd-56ef-1234567890ab'],
    ['a key of another region', kmsKeyArn(undefined, 'us-east-1')],
  ])('%s fails', (_what, key) => {
    const { config, siteId } = configWithSecrets([SMTP], { secretsKmsKeyArns: [key] });
    expect(() => synthTemplate({ config })).toThrow(new RegExp(`site ${siteId}: secretsKmsKeyArns.*${key.replace(/[/.]/g, '\\$&')}`));
  });

  test('sites.json takes a list of key ARNs only', () => {
    const doc = rawConfig();
    expect(() => parseConfig({ fleets: doc.fleets }, { sites: [{ ...doc.sites[0], secretsKmsKeyArns: 'x' }] })).toThrow(/secretsKmsKeyArns/);
    expect(() => parseConfig({ fleets: doc.fleets }, { sites: [{ ...doc.sites[0], secretsKmsKeyArns: [] }] })).toThrow(/secretsKmsKeyArns/);
  });
});
