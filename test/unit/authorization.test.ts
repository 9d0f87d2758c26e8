import { Authorizer, SERVICES, parseAccessControl } from '../../scripts/runtime/authorization';
import { createLogger } from '../../components/lib/logger';

const PUBSUB = 'aws.greengrass.ipc.pubsub';
const MQTT = 'aws.greengrass.ipc.mqttproxy';
const PUB = 'aws.greengrass#PublishToTopic';
const SUB = 'aws.greengrass#SubscribeToTopic';
const IOT_PUB = 'aws.greengrass#PublishToIoTCore';
const IOT_SUB = 'aws.greengrass#SubscribeToIoTCore';

function acl(service: string, policyId: string, operations: string[], resources: string[]): Record<string, unknown> {
  return { [service]: { [policyId]: { policyDescription: 'test', operations, resources } } };
}

describe('SERVICES', () => {
  test('lists the services and operations of the Greengrass IPC authorization policies', () => {
    expect(SERVICES[PUBSUB]).toEqual([PUB, SUB]);
    expect(SERVICES[MQTT]).toEqual([IOT_PUB, IOT_SUB]);
    expect(SERVICES['aws.greengrass.Cli']).toContain('aws.greengrass#CreateLocalDeployment');
    expect(SERVICES['aws.greengrass.ShadowManager']).toContain('aws.greengrass#ListNamedShadowsForThing');
    expect(SERVICES['aws.greengrass.SecretManager']).toEqual(['aws.greengrass#GetSecretValue']);
    expect(SERVICES['aws.greengrass.ipc.componentmetric']).toEqual(['aws.greengrass#PutComponentMetric']);
    expect(SERVICES['aws.greengrass.ipc.lifecycle']).toEqual(['aws.greengrass#PauseComponent', 'aws.greengrass#ResumeComponent']);
  });
});

describe('parseAccessControl', () => {
  test('parses an object and a JSON string alike', () => {
    const obj = acl(PUBSUB, 'c:pubsub:1', [PUB], ['a/b']);
    const a = parseAccessControl('c', obj);
    const b = parseAccessControl('c', JSON.stringify(obj));
    expect(a.errors).toEqual([]);
    expect(a.policies).toEqual([{ policyId: 'c:pubsub:1', principal: 'c', service: PUBSUB, operations: [PUB], resources: ['a/b'] }]);
    expect(b).toEqual(a);
  });

  test('absent accessControl yields nothing and no error', () => {
    expect(parseAccessControl('c', undefined)).toEqual({ policies: [], errors: [] });
  });

  test('invalid policies are reported and dropped, valid siblings kept', () => {
    const { policies, errors } = parseAccessControl('c', {
      [PUBSUB]: {
        good: { operations: [PUB], resources: ['ok'] },
        badOp: { operations: ['aws.greengrass#PublishToIoTCore'], resources: ['x'] },
        noOps: { resources: ['x'] },
        emptyOps: { operations: [], resources: ['x'] },
        noRes: { operations: [PUB] },
        onlyQuestion: { operations: [PUB], resources: ['a?b'] },
        badEscape: { operations: [PUB], resources: ['a${x}'] },
        mixed: { operations: [SUB], resources: ['fine/*', 'bad?'] },
      },
      'not.a.service': { p: { operations: ['*'], resources: ['*'] } },
    });
    expect(policies.map((p) => p.policyId).sort()).toEqual(['good', 'mixed']);
    expect(policies.find((p) => p.policyId === 'mixed')?.resources).toEqual(['fine/*']);
    const text = errors.join('\n');
    for (const id of ['badOp', 'noOps', 'emptyOps', 'noRes', 'onlyQuestion', 'badEscape', 'bad?', 'not.a.service']) {
      expect(text).toContain(id);
    }
  });

  test('unparseable JSON string is an error, not a crash', () => {
    const r = parseAccessControl('c', '{not json');
    expect(r.policies).toEqual([]);
    expect(r.errors[0]).toMatch(/not valid JSON/);
  });

  test('field names are case-insensitive, like the nucleus (Jackson)', () => {
    const r = parseAccessControl('c', { [PUBSUB]: { p: { Operations: [PUB], Resources: ['x'] } } });
    expect(r.errors).toEqual([]);
    expect(r.policies).toHaveLength(1);
  });
});

describe('Authorizer matching', () => {
  let auth: Authorizer;
  beforeEach(() => {
    auth = new Authorizer();
  });

  test('exact resource, operation and principal must match', () => {
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', [PUB], ['site/1/telemetry']));
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'site/1/telemetry')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'site/1/alarms')).toBe(false);
    expect(auth.isAuthorized('A', PUBSUB, SUB, 'site/1/telemetry')).toBe(false);
    expect(auth.isAuthorized('B', PUBSUB, PUB, 'site/1/telemetry')).toBe(false);
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'site/1/telemetry')).toBe(false);
  });

  test("operation '*' covers every operation of the service, but not unknown operations", () => {
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', ['*'], ['t']));
    expect(auth.isAuthorized('A', PUBSUB, PUB, 't')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, SUB, 't')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, 'aws.greengrass#Nope', 't')).toBe(false);
  });

  test("glob '*' matches any characters including '/', and the empty string", () => {
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', [PUB], ['site/*/telemetry', 'x*']));
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'site/1/telemetry')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'site/1/scada/inv/telemetry')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'site//telemetry')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'site/1/alarms')).toBe(false);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'x')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'xyz/deep')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'ax')).toBe(false);
  });

  test('a lone * allows everything', () => {
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', [SUB], ['*']));
    expect(auth.isAuthorized('A', PUBSUB, SUB, 'any/thing/#')).toBe(true);
  });

  test('escapes ${*} ${?} ${$} are literals', () => {
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', [PUB], ['a/${*}', 'q${?}', 'd${$}x', 'plain$dollar']));
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'a/*')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'a/b')).toBe(false);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'q?')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'qx')).toBe(false);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'd$x')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'plain$dollar')).toBe(true);
  });

  test("pubsub: '+' and '#' in a policy are literal", () => {
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', [SUB], ['a/+/b', 'c/#']));
    expect(auth.isAuthorized('A', PUBSUB, SUB, 'a/+/b')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, SUB, 'a/x/b')).toBe(false);
    expect(auth.isAuthorized('A', PUBSUB, SUB, 'c/#')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, SUB, 'c/x')).toBe(false);
  });

  test("pubsub: subscribing to filter 'a/+/b' is allowed by 'a/*' or '*'", () => {
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', [SUB], ['a/*']));
    expect(auth.isAuthorized('A', PUBSUB, SUB, 'a/+/b')).toBe(true);
    expect(auth.isAuthorized('A', PUBSUB, SUB, 'b/+/b')).toBe(false);
  });

  test("mqttproxy: '+' and '#' are MQTT wildcards; '*' still globs", () => {
    auth.setComponentPolicies('A', {
      [MQTT]: {
        'A:iot:1': { operations: [IOT_PUB, IOT_SUB], resources: ['test/#', 'dev/+/data', 'g/*/end', 'mid+dle/x'] },
      },
    });
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'test/x')).toBe(true);
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'test/x/y')).toBe(true);
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'test')).toBe(true); // MQTT-style '#' covers the parent
    expect(auth.isAuthorized('A', MQTT, IOT_SUB, 'test/#')).toBe(true);
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'testing')).toBe(false);
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'dev/7/data')).toBe(true);
    expect(auth.isAuthorized('A', MQTT, IOT_SUB, 'dev/+/data')).toBe(true);
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'dev/7/8/data')).toBe(false);
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'g/a/b/end')).toBe(true);
    // '+' not occupying a whole level is a literal character.
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'mid+dle/x')).toBe(true);
    expect(auth.isAuthorized('A', MQTT, IOT_PUB, 'midxdle/x')).toBe(false);
  });

  test("mqttproxy: lone '#' and leading '+/' work", () => {
    auth.setComponentPolicies('A', acl(MQTT, 'A:1', [IOT_SUB], ['#']));
    auth.setComponentPolicies('B', acl(MQTT, 'B:1', [IOT_PUB], ['+/status']));
    expect(auth.isAuthorized('A', MQTT, IOT_SUB, 'any/topic')).toBe(true);
    expect(auth.isAuthorized('B', MQTT, IOT_PUB, 'dev1/status')).toBe(true);
    expect(auth.isAuthorized('B', MQTT, IOT_PUB, 'a/b/status')).toBe(false);
  });

  test('setComponentPolicies replaces, removeComponent revokes, and the cache follows', () => {
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', [PUB], ['one/*']));
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'one/x')).toBe(true);
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', [PUB], ['two/*']));
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'one/x')).toBe(false);
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'two/x')).toBe(true);
    auth.removeComponent('A');
    expect(auth.isAuthorized('A', PUBSUB, PUB, 'two/x')).toBe(false);
  });

  test('duplicate policy ids across components are reported and logged, not fatal', () => {
    const lines: string[] = [];
    const logged = new Authorizer(createLogger({}, { write: (l) => lines.push(l) }));
    expect(logged.setComponentPolicies('A', acl(PUBSUB, 'same', [PUB], ['a']))).toEqual([]);
    const errors = logged.setComponentPolicies('B', acl(PUBSUB, 'same', [PUB], ['b']));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/'same' is also used by A/);
    expect(lines.some((l) => l.includes('also used by A'))).toBe(true);
    expect(logged.isAuthorized('A', PUBSUB, PUB, 'a')).toBe(true);
    expect(logged.isAuthorized('B', PUBSUB, PUB, 'b')).toBe(true);
  });

  test('many checks against cached matchers stay fast', () => {
    auth.setComponentPolicies('A', acl(PUBSUB, 'A:1', [PUB], ['site/*/scada/*/telemetry', 'site/*/scada/*/alarms']));
    let ok = 0;
    for (let i = 0; i < 200000; i++) if (auth.isAuthorized('A', PUBSUB, PUB, `site/s1/scada/inv${i % 50}/telemetry`)) ok++;
    expect(ok).toBe(200000);
  });
});
