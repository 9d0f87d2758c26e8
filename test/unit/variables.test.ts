/** Recipe variable interpolation (Greengrass Developer Guide, "AWS IoT Greengrass component recipe reference", Recipe variables). */
import type { Lifecycle } from '../../scripts/runtime/recipe';
import { VariableContext, interpolate, interpolateLifecycle, lookupPointer } from '../../scripts/runtime/variables';

const ctx: VariableContext = {
  artifactsPath: '/gg/packages/artifacts/com.ex.App/1.0.0',
  artifactsDecompressedPath: '/gg/packages/artifacts-unarchived/com.ex.App/1.0.0',
  workPath: '/gg/work/com.ex.App',
  kernelRootPath: '/gg',
  thingName: 'site-7-gateway',
  configuration: {
    port: 502,
    ratio: 0.5,
    enabled: false,
    name: 'inverter',
    nothing: null,
    nested: { b: 2, a: [1, 'x'] },
    list: ['p', 'q'],
    'a/b': 'slash',
    'm~n': 'tilde',
    '': 'empty key',
  },
  dependencies: {
    'com.ex.Base': {
      artifactsPath: '/gg/packages/artifacts/com.ex.Base/2.0.0',
      artifactsDecompressedPath: '/gg/packages/artifacts-unarchived/com.ex.Base/2.0.0',
      workPath: '/gg/work/com.ex.Base',
      configuration: { endpoint: 'tcp://localhost:1883' },
    },
  },
};

const text = (s: string): string => interpolate(s, ctx).text;

describe('interpolate', () => {
  test('system variables', () => {
    expect(text('node {artifacts:path}/main.js')).toBe('node /gg/packages/artifacts/com.ex.App/1.0.0/main.js');
    expect(text('{artifacts:decompressedPath}/model')).toBe('/gg/packages/artifacts-unarchived/com.ex.App/1.0.0/model');
    expect(text('cd {work:path}')).toBe('cd /gg/work/com.ex.App');
    expect(text('{kernel:rootPath}/ipc.socket')).toBe('/gg/ipc.socket');
    expect(text('thing={iot:thingName}')).toBe('thing=site-7-gateway');
  });

  test('configuration: scalars, null, objects and arrays', () => {
    expect(text('--port {configuration:/port}')).toBe('--port 502');
    expect(text('{configuration:/ratio} {configuration:/enabled} {configuration:/name}')).toBe('0.5 false inverter');
    expect(text('{configuration:/nothing}')).toBe('null');
    // Objects and arrays give JSON with sorted keys (the nucleus's mapper sorts them).
    expect(text("'{configuration:/nested}'")).toBe(`'{"a":[1,"x"],"b":2}'`);
    expect(text('{configuration:/list}')).toBe('["p","q"]');
    expect(text('{configuration:/list/1} {configuration:/nested/a/0}')).toBe('q 1');
  });

  test('JSON pointer escapes ~1 and ~0', () => {
    expect(text('{configuration:/a~1b} {configuration:/m~0n}')).toBe('slash tilde');
  });

  test('a missing pointer or an unknown variable is left unchanged and reported', () => {
    const r = interpolate('x {configuration:/missing} {configuration:/list/9} {configuration:nope} {artifacts:size} {foo:bar} {configuration:/port}', ctx);
    expect(r.text).toBe('x {configuration:/missing} {configuration:/list/9} {configuration:nope} {artifacts:size} {foo:bar} 502');
    expect(r.unresolved).toEqual(['{configuration:/missing}', '{configuration:/list/9}', '{configuration:nope}', '{artifacts:size}', '{foo:bar}']);
  });

  test('shell braces and JSON are not variables', () => {
    const script = `echo '{"a":1}' \${HOME} | awk '{print $1}'`;
    expect(interpolate(script, ctx)).toEqual({ text: script, unresolved: [] });
  });

  test('cross-component variables resolve for direct dependencies only', () => {
    expect(text('{com.ex.Base:configuration:/endpoint}')).toBe('tcp://localhost:1883');
    expect(text('{com.ex.Base:artifacts:path}|{com.ex.Base:artifacts:decompressedPath}|{com.ex.Base:work:path}')).toBe(
      '/gg/packages/artifacts/com.ex.Base/2.0.0|/gg/packages/artifacts-unarchived/com.ex.Base/2.0.0|/gg/work/com.ex.Base',
    );
    const r = interpolate('{com.ex.Other:configuration:/endpoint} {com.ex.Other:work:path} {com.ex.Base:configuration:/missing}', ctx);
    expect(r.text).toBe('{com.ex.Other:configuration:/endpoint} {com.ex.Other:work:path} {com.ex.Base:configuration:/missing}');
    expect(r.unresolved).toHaveLength(3);
  });

  test('a substituted value is not interpolated again', () => {
    const c: VariableContext = { ...ctx, configuration: { tricky: '{work:path}' } };
    expect(interpolate('{configuration:/tricky}', c).text).toBe('{work:path}');
  });
});

describe('lookupPointer', () => {
  test('RFC 6901 basics', () => {
    expect(lookupPointer({ a: 1 }, '')).toEqual({ found: true, value: { a: 1 } });
    expect(lookupPointer({ '': 3 }, '/')).toEqual({ found: true, value: 3 });
    expect(lookupPointer([5, 6], '/01')).toEqual({ found: false });
    expect(lookupPointer({ a: 1 }, 'a')).toEqual({ found: false });
    expect(lookupPointer({ a: { toString: 1 } }, '/a/constructor')).toEqual({ found: false });
  });
});

describe('interpolateLifecycle', () => {
  test('every script, Skipif and Setenv value; unresolved collected once', () => {
    const l: Lifecycle = {
      setenv: { PORT: '{configuration:/port}', BAD: '{configuration:/nope}' },
      install: { script: 'cp {artifacts:path}/a {work:path}', requiresPrivilege: false, setenv: {}, skipif: 'exists {work:path}/done' },
      run: { script: 'run --thing {iot:thingName} {configuration:/nope}', requiresPrivilege: true, timeoutSec: 9, setenv: { BASE: '{com.ex.Base:configuration:/endpoint}' } },
    };
    const r = interpolateLifecycle(l, ctx);
    expect(r.lifecycle).toEqual({
      setenv: { PORT: '502', BAD: '{configuration:/nope}' },
      install: { script: 'cp /gg/packages/artifacts/com.ex.App/1.0.0/a /gg/work/com.ex.App', requiresPrivilege: false, setenv: {}, skipif: 'exists /gg/work/com.ex.App/done' },
      run: { script: 'run --thing site-7-gateway {configuration:/nope}', requiresPrivilege: true, timeoutSec: 9, setenv: { BASE: 'tcp://localhost:1883' } },
    });
    expect(r.unresolved).toEqual(['{configuration:/nope}']);
    // The input is not modified.
    expect(l.setenv.PORT).toBe('{configuration:/port}');
  });
});
