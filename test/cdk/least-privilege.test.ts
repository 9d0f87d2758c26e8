/**
 * Our own least-privilege check over every IAM and IoT policy in the synthesized template
 * (cdk-nag has no IoT rules): no service-wide wildcard actions, and a `*` resource only for an
 * explicit allow-list of actions, each with the reason AWS requires it.
 */
import { GREENGRASS_DATA_PLANE_ACTIONS } from '../../cdk/lib/iot-policies';
import type { Template } from 'aws-cdk-lib/assertions';
import { parseConfig } from '../../cdk/lib/config';
import { asArray, configWithSecrets, kmsKeyArn, notifyOutputs, rawConfig, realConfig, render, resourcesOf, secretArn, synthTemplate } from './helpers';

/** Actions allowed on Resource "*", and why. Anything else on "*" fails. */
const STAR_RESOURCE_ALLOWED: Record<string, string> = Object.fromEntries(
  GREENGRASS_DATA_PLANE_ACTIONS.map((a) => [a, 'Greengrass core data-plane call with no resource to scope (greengrass v2 device-auth.md)']),
);
/** AWS managed policies allowed, and why. */
const MANAGED_ALLOWED: Record<string, string> = {
  'arn:<AWS::Partition>:iam::aws:policy/service-role/AWSIoTThingsRegistration': 'AWS IoT provisioning role per greengrass v2 fleet-provisioning-setup.md',
};

interface Stmt {
  Effect: string;
  Action?: string | string[];
  NotAction?: unknown;
  Resource?: unknown;
  NotResource?: unknown;
  Principal?: unknown;
}
interface Found {
  where: string;
  kind: 'iam' | 'iot';
  stmt: Stmt;
}

const config = realConfig();
const { template } = synthTemplate({ config });
const all = resourcesOf(template);

// The real configuration names no secrets (sites.json holds no account ids); a copy whose first site
// names two, with a customer-managed key, shows the secret grants to the same checks.
const SECRETS = [secretArn('dcmms/plant-a/smtp-AbCdEf'), secretArn('dcmms/plant-a/webhook-GhIjKl')];
const KEY = kmsKeyArn();
const withSecrets = configWithSecrets(SECRETS, { secretsKmsKeyArns: [KEY] });
const secretsTemplate = synthTemplate({ config: withSecrets.config }).template;

function statements(t: Template = template): Found[] {
  const all = resourcesOf(t);
  const out: Found[] = [];
  for (const [id, r] of Object.entries(all)) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') {
      for (const s of (p['PolicyDocument'] as { Statement: Stmt[] }).Statement) out.push({ where: id, kind: 'iam', stmt: s });
    }
    if (r.Type === 'AWS::IAM::Role') {
      for (const pol of asArray(p['Policies'] as { PolicyDocument: { Statement: Stmt[] } }[])) for (const s of pol.PolicyDocument.Statement) out.push({ where: id, kind: 'iam', stmt: s });
    }
    if (r.Type === 'AWS::IoT::Policy') {
      for (const s of (p['PolicyDocument'] as { Statement: Stmt[] }).Statement) out.push({ where: id, kind: 'iot', stmt: s });
    }
  }
  return out;
}

const found = statements();

describe.each([
  ['the real configuration', template],
  ['a configuration with notification secrets', secretsTemplate],
])('%s', (_name, t) => {
  const inT = statements(t);

  test('there are policies to check (IAM and IoT)', () => {
    expect(inT.filter((f) => f.kind === 'iam').length).toBeGreaterThan(5);
    expect(inT.filter((f) => f.kind === 'iot').length).toBeGreaterThan(5);
  });

  test('only Allow statements with explicit Action and Resource (no NotAction / NotResource)', () => {
    for (const { where, stmt } of inT) {
      expect({ where, effect: stmt.Effect }).toEqual({ where, effect: 'Allow' });
      expect({ where, notAction: stmt.NotAction, notResource: stmt.NotResource }).toEqual({ where, notAction: undefined, notResource: undefined });
    }
  });

  test('no service-wide wildcard actions (iot:*, greengrass:*, s3:*, *)', () => {
    for (const { where, stmt } of inT) {
      for (const a of asArray(stmt.Action)) {
        expect({ where, action: a, wild: /^(\*|[a-z0-9-]+:\*)$/i.test(a) }).toEqual({ where, action: a, wild: false });
      }
    }
  });

  test('a "*" resource only for allow-listed actions', () => {
    const offenders: string[] = [];
    for (const { where, stmt } of inT) {
      const resources = asArray(stmt.Resource).map(render);
      if (!resources.includes('*')) continue;
      for (const a of asArray(stmt.Action)) if (!(a in STAR_RESOURCE_ALLOWED)) offenders.push(`${where}: ${a} on *`);
    }
    expect(offenders).toEqual([]);
  });

  test('no resource is a bare service wildcard (arn:...:iot:...:*, client/*, topic/*, bucket/*)', () => {
    for (const { where, stmt } of inT) {
      for (const r of asArray(stmt.Resource).map(render)) {
        expect({ where, r, bad: /:(client|topic|topicfilter|thing|cert)\/\*$|:iot:[^:]*:[^:]*:\*$|\.Arn>\/\*$/.test(r) }).toEqual({ where, r, bad: false });
      }
    }
  });

  test('managed policies only from the allow-list', () => {
    for (const [id, r] of Object.entries(resourcesOf(t, 'AWS::IAM::Role'))) {
      for (const m of asArray(r.Properties?.['ManagedPolicyArns'] as unknown[]).map(render)) expect({ id, m, allowed: m in MANAGED_ALLOWED }).toEqual({ id, m, allowed: true });
    }
  });
});

describe.each(config.sites.map((s) => [s.siteId, s] as const))('core device policy of site %s', (_id, site) => {
  const policy = Object.values(resourcesOf(template, 'AWS::IoT::Policy')).find((p) => p.Properties?.['PolicyName'] === `dcmms_${site.fleet}_${site.siteId}_core`)!;
  const stmts = (policy.Properties!['PolicyDocument'] as { Statement: Stmt[] }).Statement;
  const prefix = `dcmms_${site.fleet}_${site.siteId}_`;

  test('connects only as a thing of the site, by thing-name prefix', () => {
    const connect = stmts.filter((s) => asArray(s.Action).includes('iot:Connect')).flatMap((s) => asArray(s.Resource).map(render));
    expect(connect).toEqual([`arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:client/${prefix}*`]);
  });

  test('publishes dCMMS data only on its own site topics, and thing topics only of its own things', () => {
    const topics = stmts.filter((s) => asArray(s.Action).includes('iot:Publish')).flatMap((s) => asArray(s.Resource).map(render));
    expect(topics.length).toBeGreaterThan(0);
    for (const t of topics) {
      const topic = t.replace(/^arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:topic\//, '');
      expect(topic.startsWith(`dcmms/${site.siteId}/`) || topic.startsWith(`$aws/things/${prefix}*/`)).toBe(true);
    }
    expect(topics).toContain(`arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:topic/dcmms/${site.siteId}/health`);
  });

  test('assumes only its fleet role alias', () => {
    const assume = stmts.filter((s) => asArray(s.Action).includes('iot:AssumeRoleWithCertificate')).flatMap((s) => asArray(s.Resource).map(render));
    expect(assume).toHaveLength(1);
    expect(assume[0]).toMatch(/^<Fleet.*RoleAlias.*\.RoleAliasArn>$/);
  });
});

/**
 * Can two AWS IoT policy resource patterns (`*`: any run of characters, `?`: one character) match
 * the same string? A walk over both patterns at once; memoized, so linear in the product of lengths.
 */
function patternsOverlap(a: string, b: string): boolean {
  const seen = new Map<string, boolean>();
  const go = (i: number, j: number): boolean => {
    const k = `${i},${j}`;
    const known = seen.get(k);
    if (known !== undefined) return known;
    seen.set(k, false);
    let r: boolean;
    if (i === a.length && j === b.length) r = true;
    else if (a[i] === '*') r = go(i + 1, j) || (j < b.length && go(i, j + 1));
    else if (b[j] === '*') r = go(i, j + 1) || (i < a.length && go(i + 1, j));
    else if (i === a.length || j === b.length) r = false;
    else r = (a[i] === '?' || b[j] === '?' || a[i] === b[j]) && go(i + 1, j + 1);
    seen.set(k, r);
    return r;
  };
  return go(0, 0);
}

/** Glob match of one concrete client id against a policy pattern. */
const patternMatches = (pattern: string, id: string): boolean => patternsOverlap(pattern, id.replace(/[*?]/g, '_'));

const connectResources = (policyName: (n: string) => boolean): string[] =>
  Object.values(resourcesOf(template, 'AWS::IoT::Policy'))
    .filter((p) => policyName(String(p.Properties?.['PolicyName'])))
    .flatMap((p) => (p.Properties!['PolicyDocument'] as { Statement: Stmt[] }).Statement)
    .filter((s) => asArray(s.Action).includes('iot:Connect'))
    .flatMap((s) => asArray(s.Resource).map(render));

test('the overlap check itself: it sees overlapping client id patterns', () => {
  // The fleet-wide claim pattern this replaced overlapped every core device of the fleet.
  expect(patternsOverlap('client/dcmms_solar-eu_*', 'client/dcmms_solar-eu_plant-a_*')).toBe(true);
  // A UUID-shaped pattern (the plugin's default client id) would not keep gateways out either.
  expect(patternsOverlap('client/????????-????-*', 'client/dcmms_ab-c_si-te_*')).toBe(true);
  expect(patternsOverlap('client/dcmms-claim_solar-eu_*', 'client/dcmms_solar-eu_plant-a_*')).toBe(false);
  expect(patternsOverlap('client/a*b', 'client/*c')).toBe(false);
  expect(patternsOverlap('client/a*', 'client/*a')).toBe(true);
});

test('no MQTT client id is allowed by both a claim policy and a core device policy (a claim certificate cannot take over a gateway\'s connection)', () => {
  const claim = connectResources((n) => n.endsWith('_claim'));
  const core = connectResources((n) => n.endsWith('_core'));
  expect(claim).toHaveLength(config.fleets.length);
  expect(core).toHaveLength(config.sites.length);
  const overlaps = claim.flatMap((c) => core.filter((k) => patternsOverlap(c, k)).map((k) => `${c} ~ ${k}`));
  expect(overlaps).toEqual([]);
  // Nor does one fleet's claim certificate reach another fleet's devices while they provision.
  for (const [i, a] of claim.entries()) for (const b of claim.slice(i + 1)) expect({ a, b, overlap: patternsOverlap(a, b) }).toEqual({ a, b, overlap: false });
  // What each side is for: the fleet provisioning plugin connects with its `deviceId` (docs/cdk.md:
  // dcmms-claim_<fleet>_<serial>); the nucleus of a provisioned gateway with its thing name and `<thing>#<n>`.
  for (const f of config.fleets) {
    const mine = claim.filter((c) => patternMatches(c, `arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:client/dcmms-claim_${f.name}_gw-0042`));
    expect(mine).toHaveLength(1);
  }
  for (const s of config.sites) {
    const thing = `dcmms_${s.fleet}_${s.siteId}_gw-0042`;
    for (const id of [thing, `${thing}#2`]) {
      const arn = `arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:client/${id}`;
      expect(core.some((k) => patternMatches(k, arn))).toBe(true);
      expect(claim.filter((c) => patternMatches(c, arn))).toEqual([]);
    }
  }
});

test('the claim policy allows provisioning only', () => {
  for (const f of config.fleets) {
    const p = Object.values(resourcesOf(template, 'AWS::IoT::Policy')).find((x) => x.Properties?.['PolicyName'] === `dcmms_${f.name}_claim`)!;
    const stmts = (p.Properties!['PolicyDocument'] as { Statement: Stmt[] }).Statement;
    expect(new Set(stmts.flatMap((s) => asArray(s.Action)))).toEqual(new Set(['iot:Connect', 'iot:Publish', 'iot:Receive', 'iot:Subscribe']));
    for (const s of stmts) {
      for (const r of asArray(s.Resource).map(render)) {
        const rest = r.replace(/^arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:/, '');
        expect(
          rest === `client/dcmms-claim_${f.name}_*` ||
            /^topic(filter)?\/\$aws\/certificates\/create(-from-csr)?\/\*$/.test(rest) ||
            rest === `topic/$aws/provisioning-templates/dcmms_${f.name}_provisioning/provision/*` ||
            rest === `topicfilter/$aws/provisioning-templates/dcmms_${f.name}_provisioning/provision/*`,
        ).toBe(true);
      }
    }
  }
});

test("each fleet's Token Exchange role writes only under the calling gateway's own prefix and reads only exact artifact objects", () => {
  for (const f of config.fleets) {
    const [roleId] = Object.entries(resourcesOf(template, 'AWS::IAM::Role')).find(([id]) => id.startsWith(`Fleet${f.name.replace(/-/g, '')}TokenExchangeRole`))!;
    const stmts = found.filter((x) => x.kind === 'iam' && JSON.stringify(all[x.where]!.Properties?.['Roles'] ?? []).includes(roleId)).map((x) => x.stmt);
    const s3 = stmts.filter((s) => asArray(s.Action).some((a) => a.startsWith('s3:')));
    const writes = s3.filter((s) => asArray(s.Action).some((a) => a !== 's3:GetObject'));
    // A fleet without the Uplink's S3 export writes nothing to S3.
    if (!f.uplinkS3Export) {
      expect(writes).toEqual([]);
      continue;
    }
    // One write statement, PutObject only, on the data bucket's fleet prefix + the IAM policy variable
    // the AWS IoT credentials provider fills with the calling thing's name: nothing broader. Through
    // Stream Manager also the two multipart actions its S3 export needs (test/cdk/stream-manager.test.ts).
    expect(writes).toHaveLength(1);
    expect(asArray(writes[0]!.Action)).toEqual(f.streamManager ? ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'] : ['s3:PutObject']);
    const resources = asArray(writes[0]!.Resource).map(render);
    expect(resources).toHaveLength(1);
    expect(resources[0]).toMatch(new RegExp(`^<Cloud\\w*Data\\w*\\.Arn>/fleets/${f.name}/\\$\\{credentials-iot:ThingName\\}/\\*$`));
    for (const s of s3.filter((x) => !writes.includes(x))) {
      expect(asArray(s.Action)).toEqual(['s3:GetObject']);
      for (const r of asArray(s.Resource).map(render)) expect(r).toMatch(/\/[0-9a-f]{64}\.zip$/);
    }
    expect(s3.length).toBe(2);
  }
  expect(config.fleets.some((f) => f.uplinkS3Export)).toBe(true); // the real configuration exercises the grant
});

/** The statements of a fleet's Token Exchange role in a template. */
function roleStatements(t: Template, fleet: string): Stmt[] {
  const [roleId] = Object.entries(resourcesOf(t, 'AWS::IAM::Role')).find(([id]) => id.startsWith(`Fleet${fleet.replace(/-/g, '')}TokenExchangeRole`))!;
  const policies = resourcesOf(t);
  return statements(t).filter((x) => x.kind === 'iam' && JSON.stringify(policies[x.where]!.Properties?.['Roles'] ?? []).includes(roleId)).map((x) => x.stmt);
}
const touches = (s: Stmt, prefix: string) => asArray(s.Action).some((a) => a.startsWith(prefix));

test("a fleet's Token Exchange role may read exactly the secrets its sites name, and decrypt with a site's key only through Secrets Manager for those secrets", () => {
  const stmts = roleStatements(secretsTemplate, withSecrets.fleet);
  const reads = stmts.filter((s) => touches(s, 'secretsmanager:'));
  expect(reads).toHaveLength(1);
  expect(asArray(reads[0]!.Action)).toEqual(['secretsmanager:GetSecretValue']);
  expect(asArray(reads[0]!.Resource).map(render)).toEqual(SECRETS);
  const decrypts = stmts.filter((s) => touches(s, 'kms:'));
  expect(decrypts).toHaveLength(1);
  expect(asArray(decrypts[0]!.Action)).toEqual(['kms:Decrypt']);
  expect(asArray(decrypts[0]!.Resource).map(render)).toEqual([KEY]);
  const conditions = (decrypts[0] as Stmt & { Condition?: Record<string, Record<string, unknown>> }).Condition!;
  expect(Object.keys(conditions)).toEqual(['StringEquals']);
  expect(render(conditions['StringEquals']!['kms:ViaService'])).toBe('secretsmanager.<AWS::Region>.<AWS::URLSuffix>');
  expect(conditions['StringEquals']!['kms:EncryptionContext:SecretARN']).toEqual(SECRETS);
  for (const s of [...reads, ...decrypts]) for (const r of asArray(s.Resource).map(render)) expect(r).not.toContain('*');
});

test('a fleet whose sites name no secrets has no secretsmanager or kms permission at all (nor any fleet of the real configuration)', () => {
  const others = config.fleets.filter((f) => f.name !== withSecrets.fleet);
  expect(others.length).toBeGreaterThan(0);
  for (const f of others) expect(roleStatements(secretsTemplate, f.name).filter((s) => touches(s, 'secretsmanager:') || touches(s, 'kms:'))).toEqual([]);
  for (const f of config.fleets) expect(roleStatements(template, f.name).filter((s) => touches(s, 'secretsmanager:') || touches(s, 'kms:'))).toEqual([]);
});

test("two sites of one fleet: the role reads both sites' secrets, and each site's key decrypts only that site's secrets", () => {
  const doc = rawConfig();
  const first = doc.sites[0];
  const second = { ...JSON.parse(JSON.stringify(first)), siteId: `${first.siteId}-two` };
  const [a, b] = [secretArn('dcmms/site-one/smtp-AbCdEf'), secretArn('dcmms/site-two/smtp-MnOpQr')];
  const [keyA, keyB] = [kmsKeyArn('1234abcd-12ab-34cd-56ef-1234567890ab'), kmsKeyArn('5678abcd-12ab-34cd-56ef-1234567890ab')];
  first.componentConfig = { 'com.dcmms.edge.LocalControl': { outputs: notifyOutputs(a) } };
  first.secretsKmsKeyArns = [keyA];
  second.componentConfig = { 'com.dcmms.edge.LocalControl': { outputs: notifyOutputs(b) } };
  second.secretsKmsKeyArns = [keyB];
  doc.sites.splice(1, 0, second);
  const t = synthTemplate({ config: parseConfig({ fleets: doc.fleets }, { sites: doc.sites }) }).template;
  const stmts = roleStatements(t, first.fleet);
  expect(stmts.filter((s) => touches(s, 'secretsmanager:')).map((s) => asArray(s.Resource).map(render))).toEqual([[a, b]]);
  const decrypts = stmts.filter((s) => touches(s, 'kms:')) as (Stmt & { Condition: { StringEquals: Record<string, unknown> } })[];
  expect(decrypts.map((s) => [asArray(s.Resource).map(render), asArray(s.Condition.StringEquals['kms:EncryptionContext:SecretARN'] as string[])])).toEqual([
    [[keyA], [a]],
    [[keyB], [b]],
  ]);
});
