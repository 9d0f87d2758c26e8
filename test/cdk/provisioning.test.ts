/** Fleet provisioning by claim: the template, and the pre-provisioning hook's allow-list. */
import vm from 'node:vm';
import { HOOK_SOURCE } from '../../cdk/lib/hook';
import { realConfig, render, resourcesOf, synthTemplate } from './helpers';

const config = realConfig();
const { template } = synthTemplate({ config });

type Hook = (event: unknown) => Promise<{ allowProvisioning: boolean }>;

/** Load the inline hook source as Lambda would, with the environment the stack gives it. */
function loadHook(env: Record<string, string>): Hook {
  const module = { exports: {} as { handler?: Hook } };
  const logs: string[] = [];
  vm.runInNewContext(HOOK_SOURCE, { module, exports: module.exports, process: { env }, console: { log: (s: string) => logs.push(s) }, JSON, Set });
  return module.exports.handler!;
}

describe.each(config.fleets.map((f) => [f.name, f] as const))('fleet %s', (name) => {
  const sites = config.sites.filter((s) => s.fleet === name);
  const templates = Object.values(resourcesOf(template, 'AWS::IoT::ProvisioningTemplate')).filter((t) => t.Properties?.['TemplateName'] === `dcmms_${name}_provisioning`);

  test('a fleet provisioning template with the hook, placing devices in their site group with the site policy', () => {
    expect(templates).toHaveLength(1);
    const p = templates[0]!.Properties!;
    expect(p['TemplateType']).toBe('FLEET_PROVISIONING');
    expect(p['Enabled']).toBe(true);
    expect((p['PreProvisioningHook'] as { PayloadVersion: string }).PayloadVersion).toBe('2020-04-01');
    const body = JSON.parse(render(p['TemplateBody']));
    expect(body.Resources.thing.Properties.ThingGroups).toEqual([{ 'Fn::Join': ['', [`dcmms_${name}_`, { Ref: 'SiteId' }, '']] }]);
    expect(body.Resources.policy.Properties.PolicyName).toEqual({ 'Fn::Join': ['', [`dcmms_${name}_`, { Ref: 'SiteId' }, '_core']] });
    expect(body.Resources.certificate.Properties.CertificateId).toEqual({ Ref: 'AWS::IoT::Certificate::Id' });
    // The device cannot name a policy or group itself.
    expect(Object.keys(body.Parameters).sort()).toEqual(['AWS::IoT::Certificate::Id', 'SiteId', 'ThingName']);
  });

  test('the hook Lambda carries the fleet allow-list and only IoT from this template may invoke it', () => {
    const fn = Object.values(resourcesOf(template, 'AWS::Lambda::Function')).find((f) => (f.Properties?.['Environment'] as any).Variables.THING_PREFIX === `dcmms_${name}_`)!;
    expect(JSON.parse((fn.Properties!['Environment'] as any).Variables.ALLOWED_SITES)).toEqual(sites.map((s) => s.siteId).sort());
    const perms = Object.values(resourcesOf(template, 'AWS::Lambda::Permission')).filter((p) => render(p.Properties?.['SourceArn']).endsWith(`:provisioningtemplate/dcmms_${name}_provisioning`));
    expect(perms).toHaveLength(1);
    expect(perms[0]!.Properties!['Principal']).toBe('iot.amazonaws.com');
  });

  test('the hook allows listed sites with well-formed thing names and refuses the rest', async () => {
    const fn = Object.values(resourcesOf(template, 'AWS::Lambda::Function')).find((f) => (f.Properties?.['Environment'] as any).Variables.THING_PREFIX === `dcmms_${name}_`)!;
    const hook = loadHook((fn.Properties!['Environment'] as any).Variables);
    const site = sites[0]!.siteId;
    const call = (SiteId: unknown, ThingName: unknown) => hook({ parameters: { SiteId, ThingName }, certificateId: 'c' }).then((r) => r.allowProvisioning);
    await expect(call(site, `dcmms_${name}_${site}_gw-01`)).resolves.toBe(true);
    await expect(call('not-listed', `dcmms_${name}_not-listed_gw-01`)).resolves.toBe(false);
    await expect(call(site, `dcmms_${name}_${site}_`)).resolves.toBe(false);
    await expect(call(site, `dcmms_other_${site}_gw-01`)).resolves.toBe(false);
    await expect(call(site, `dcmms_${name}_${site}_gw_01`)).resolves.toBe(false);
    await expect(call(undefined, undefined)).resolves.toBe(false);
  });
});
