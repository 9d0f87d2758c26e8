/**
 * The whole app as `npx cdk synth` builds it, with CDK's built-in CloudFormation validation (it
 * catches wrong property shapes, e.g. camelCase RateIncreaseCriteria) and cdk-nag AwsSolutions on.
 * The only test that pays for them (~8 s).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { createApp } from '../../cdk/lib/app';
import { configWithSecrets, kmsKeyArn, realConfig, tempDir } from './helpers';

test('the whole app synthesizes with CloudFormation validation and cdk-nag AwsSolutions, without credentials', () => {
  const dir = tempDir('app');
  const env = { ...process.env };
  delete process.env['AWS_ACCESS_KEY_ID'];
  delete process.env['AWS_PROFILE'];
  try {
    const { app } = createApp({ config: realConfig(), lockFile: path.join(dir, 'lock.json'), lockMode: 'record', outdir: path.join(dir, 'cdk.out') });
    const assembly = app.synth();
    // synth throws on any violation; the report shows both plugins ran and passed.
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'cdk.out', 'validation-report.json'), 'utf8')) as { pluginReports: { pluginName: string; conclusion: string; violations: unknown[] }[] };
    const plugins = report.pluginReports.map((r) => r.pluginName).join(' ');
    expect(plugins).toMatch(/CloudFormation/);
    for (const r of report.pluginReports) expect({ plugin: r.pluginName, conclusion: r.conclusion, violations: r.violations }).toEqual({ plugin: r.pluginName, conclusion: 'success', violations: [] });
    const template = assembly.getStackByName('DcmmsEdge').template as { Resources: Record<string, { Type: string }> };
    const types = new Set(Object.values(template.Resources).map((r) => r.Type));
    for (const t of ['AWS::GreengrassV2::ComponentVersion', 'AWS::GreengrassV2::Deployment', 'AWS::IoT::ProvisioningTemplate', 'AWS::IoT::TopicRule']) expect(types).toContain(t);
    // Environment-agnostic: no account id or region literal anywhere.
    // An account id would stand in an ARN (:123456789012:) or as a string; a 12-digit number value (a retention in ms) is not one.
    expect(JSON.stringify(template)).not.toMatch(/:\d{12}:|\\?"\d{12}\\?"|(us|eu|ap|sa|ca|me|af)-(east|west|north|south|central|northeast|southeast)-\d/);
  } finally {
    process.env = env;
  }
});

test('with notification secrets and a customer-managed key, the app still passes CloudFormation validation and cdk-nag (exact ARNs, no acknowledgement needed)', () => {
  const dir = tempDir('app-secrets');
  const { config } = configWithSecrets(undefined, { secretsKmsKeyArns: [kmsKeyArn()] });
  const { app } = createApp({ config, lockFile: path.join(dir, 'lock.json'), lockMode: 'record', outdir: path.join(dir, 'cdk.out') });
  const template = app.synth().getStackByName('DcmmsEdge').template as { Rules?: Record<string, unknown>; Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
  const report = JSON.parse(fs.readFileSync(path.join(dir, 'cdk.out', 'validation-report.json'), 'utf8')) as { pluginReports: { pluginName: string; conclusion: string; violations: unknown[] }[] };
  for (const r of report.pluginReports) expect({ plugin: r.pluginName, conclusion: r.conclusion, violations: r.violations }).toEqual({ plugin: r.pluginName, conclusion: 'success', violations: [] });
  // Ours beside CDK's CheckBootstrapVersion, which every template of the default synthesizer has.
  expect(Object.keys(template.Rules ?? {}).sort()).toEqual(['CheckBootstrapVersion', 'SecretsInStackRegion']);
  expect(JSON.stringify(template.Resources)).toContain('secretsmanager:GetSecretValue');
});

test('cdk-nag is really on: an unencrypted, non-TLS bucket added to the stack fails the synth', () => {
  const dir = tempDir('nag');
  const { app, stack } = createApp({ config: realConfig(), lockFile: path.join(dir, 'lock.json'), lockMode: 'record', outdir: path.join(dir, 'cdk.out'), cfnValidation: false });
  new s3.Bucket(stack, 'Careless');
  expect(() => app.synth()).toThrow();
  const report = fs.readFileSync(path.join(dir, 'cdk.out', 'validation-report.json'), 'utf8');
  expect(report).toContain('AwsSolutions-S10');
  expect(report).toContain('Careless');
  expect(report).not.toMatch(/"resourceLogicalId":\s*"(?!Careless)[^"]*"[^}]*AwsSolutions/);
});
