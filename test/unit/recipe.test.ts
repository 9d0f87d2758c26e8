/** Recipe parsing, validation and manifest selection (Greengrass Developer Guide, "AWS IoT Greengrass component recipe reference"). */
import fs from 'node:fs';
import path from 'node:path';
import { Platform, Recipe, RecipeError, currentPlatform, loadRecipeDir, parseRecipe, selectManifest } from '../../scripts/runtime/recipe';

const LINUX_AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const LINUX_ARM: Platform = { os: 'linux', architecture: 'arm', 'architecture.detail': 'armv7l' };

const YAML_RECIPE = `
RecipeFormatVersion: '2020-01-25'
ComponentName: com.example.Hello
ComponentVersion: 1.2.3
ComponentDescription: says hello
ComponentPublisher: Example
ComponentConfiguration:
  DefaultConfiguration:
    greeting: hi
    accessControl:
      aws.greengrass.ipc.pubsub:
        com.example.Hello:pubsub:1:
          operations: [aws.greengrass#PublishToTopic]
          resources: [a/b]
ComponentDependencies:
  com.example.Base:
    VersionRequirement: '>=1.0.0 <2.0.0'
  com.example.Opt:
    VersionRequirement: ^2.0.0
    DependencyType: soft
Manifests:
  - Platform:
      os: linux
      architecture: amd64
    Lifecycle:
      Setenv:
        MODE: prod
        COUNT: 3
      Install: npm ci
      Run:
        Script: node {artifacts:path}/main.js
        RequiresPrivilege: 'true'
        Timeout: '30'
        Skipif: onpath node-never
        Setenv:
          MODE: step
    Artifacts:
      - URI: s3://bucket/com.example.Hello/1.2.3/main.js
        Permission: { Read: all, Execute: OWNER }
      - Uri: s3://bucket/com.example.Hello/1.2.3/model.zip
        Unarchive: zip
`;

function parse(text: string): Recipe {
  return parseRecipe(text, 'recipe.yaml');
}

/** A minimal recipe with `extra` YAML appended at the top level. */
function minimal(extra = '', manifests = "Manifests:\n  - Lifecycle:\n      Run: echo hi\n"): string {
  return `RecipeFormatVersion: '2020-01-25'\nComponentName: com.example.Min\nComponentVersion: 1.0.0\n${extra}${manifests}`;
}

function error(text: string): RecipeError {
  try {
    parse(text);
  } catch (e) {
    expect(e).toBeInstanceOf(RecipeError);
    return e as RecipeError;
  }
  throw new Error('expected a RecipeError');
}

describe('parseRecipe', () => {
  test('reads a full YAML recipe', () => {
    const r = parse(YAML_RECIPE);
    expect(r).toMatchObject({
      formatVersion: '2020-01-25',
      name: 'com.example.Hello',
      version: '1.2.3',
      description: 'says hello',
      publisher: 'Example',
      source: 'recipe.yaml',
      dependencies: {
        'com.example.Base': { versionRequirement: '>=1.0.0 <2.0.0', dependencyType: 'HARD' },
        'com.example.Opt': { versionRequirement: '^2.0.0', dependencyType: 'SOFT' },
      },
    });
    expect(r.defaultConfiguration.greeting).toBe('hi');
    // Configuration content keeps its keys as written (only recipe keys are case-insensitive).
    expect(Object.keys(r.defaultConfiguration.accessControl as object)).toEqual(['aws.greengrass.ipc.pubsub']);
    const m = selectManifest(r, LINUX_AMD64);
    expect(m.lifecycle).toEqual({
      setenv: { MODE: 'prod', COUNT: '3' },
      install: { script: 'npm ci', requiresPrivilege: false, setenv: {} },
      run: { script: 'node {artifacts:path}/main.js', requiresPrivilege: true, timeoutSec: 30, skipif: 'onpath node-never', setenv: { MODE: 'step' } },
    });
    expect(m.artifacts).toEqual([
      { uri: 's3://bucket/com.example.Hello/1.2.3/main.js', fileName: 'main.js', unarchive: 'NONE', permission: { read: 'ALL', execute: 'OWNER' } },
      { uri: 's3://bucket/com.example.Hello/1.2.3/model.zip', fileName: 'model.zip', unarchive: 'ZIP', permission: { read: 'OWNER', execute: 'NONE' } },
    ]);
  });

  test('reads JSON, with keys in any case', () => {
    const json = JSON.stringify({
      recipeformatversion: '2020-01-25',
      COMPONENTNAME: 'com.example.Json',
      componentVersion: '0.1.0-beta.1',
      componentconfiguration: { defaultconfiguration: { Key: 1 } },
      manifests: [{ platform: { OS: 'linux' }, lifecycle: { startup: { script: 'start', TIMEOUT: 5 }, SHUTDOWN: 'stop' } }],
    });
    const r = parseRecipe(json, 'recipe.json');
    expect(r.name).toBe('com.example.Json');
    expect(r.version).toBe('0.1.0-beta.1');
    expect(r.defaultConfiguration).toEqual({ Key: 1 });
    expect(r.dependencies).toEqual({});
    const m = selectManifest(r, LINUX_AMD64);
    expect(m.lifecycle.startup).toEqual({ script: 'start', requiresPrivilege: false, timeoutSec: 5, setenv: {} });
    expect(m.lifecycle.shutdown?.script).toBe('stop');
    expect(m.artifacts).toEqual([]);
  });

  test.each([
    ['not YAML at all', 'a: [1, 2', /recipe\.yaml: not valid YAML or JSON/],
    ['a list', '- 1\n- 2', /recipe\.yaml: a recipe must be a mapping/],
    ['missing name', "RecipeFormatVersion: '2020-01-25'\nComponentVersion: 1.0.0\nManifests: [{}]", /recipe\.yaml: ComponentName is required \(a reverse-DNS name/],
    ['wrong format version', minimal().replace("'2020-01-25'", "'2021-01-01'"), /RecipeFormatVersion must be "2020-01-25", got "2021-01-01"/],
    ['name not reverse-DNS', minimal().replace('com.example.Min', 'Hello'), /ComponentName "Hello" must be a reverse-DNS name/],
    ['name with a space', minimal().replace('com.example.Min', 'com.example.My Thing'), /must be a reverse-DNS name/],
    ['reserved namespace', minimal().replace('com.example.Min', 'aws.greengrass.Mine'), /aws\.greengrass\.\* namespace is reserved/],
    ['version not semver', minimal().replace('1.0.0', "'1.0'"), /ComponentVersion "1\.0" must be a semantic version MAJOR\.MINOR\.PATCH/],
    ['version read as a number', minimal().replace('1.0.0', '1.0'), /ComponentVersion must be a string \(a semantic version such as 1\.0\.0\), got 1 \(a number: quote it in YAML\)/],
    ['version with a v', minimal().replace('1.0.0', 'v1.0.0'), /ComponentVersion "v1\.0\.0" must be a semantic version/],
    ['unknown top-level key', minimal('ComponentAuthor: me\n'), /recipe\.yaml: ComponentAuthor is not a known key; allowed here: RecipeFormatVersion, ComponentName, .*Manifests, Lifecycle \(case-insensitive\)/],
    ['key given twice in two cases', minimal('componentname: com.example.Other\n'), /componentname is given twice \(keys are case-insensitive\)/],
    ['no manifests', minimal('', 'Manifests: []\n'), /Manifests is required: a non-empty list/],
    ['bad dependency type', minimal("ComponentDependencies:\n  com.example.B:\n    VersionRequirement: '*'\n    DependencyType: WEAK\n"), /ComponentDependencies\.com\.example\.B\.DependencyType must be one of HARD, SOFT \(any case\), got "WEAK"/],
    ['bad version range', minimal("ComponentDependencies:\n  com.example.B:\n    VersionRequirement: 'lots'\n"), /ComponentDependencies\.com\.example\.B\.VersionRequirement "lots" is not a valid semver range/],
    ['missing version range', minimal('ComponentDependencies:\n  com.example.B:\n    DependencyType: HARD\n'), /ComponentDependencies\.com\.example\.B\.VersionRequirement is required/],
    ['unknown lifecycle key', minimal('', 'Manifests:\n  - Lifecycle:\n      Start: go\n'), /Manifests\[0\]\.Lifecycle\.Start is not a known key; allowed here: Setenv, Bootstrap, Install, Startup, Run, Shutdown, Recover/],
    ['misspelt step key', minimal('', 'Manifests:\n  - Lifecycle:\n      Run:\n        Scirpt: go\n'), /Manifests\[0\]\.Lifecycle\.Run\.Scirpt is not a known key; allowed here: Script, RequiresPrivilege, Skipif, Timeout, Setenv/],
    ['step without script', minimal('', 'Manifests:\n  - Lifecycle:\n      Run:\n        Timeout: 3\n'), /Manifests\[0\]\.Lifecycle\.Run\.Script is required/],
    ['bad timeout', minimal('', 'Manifests:\n  - Lifecycle:\n      Run:\n        Script: go\n        Timeout: soon\n'), /Manifests\[0\]\.Lifecycle\.Run\.Timeout must be a positive whole number of seconds, got "soon"/],
    ['bad skipif', minimal('', 'Manifests:\n  - Lifecycle:\n      Install:\n        Script: go\n        Skipif: test -f x\n'), /Skipif must be "onpath <executable>" or "exists <path>", optionally negated/],
    ['bad setenv value', minimal('', 'Manifests:\n  - Lifecycle:\n      Setenv:\n        A: [1]\n'), /Manifests\[0\]\.Lifecycle\.Setenv\.A must be a string, number or boolean/],
    ['bad unarchive', minimal('', 'Manifests:\n  - Artifacts:\n      - URI: s3://b/x.tgz\n        Unarchive: TAR\n'), /Manifests\[0\]\.Artifacts\[0\]\.Unarchive must be one of NONE, ZIP/],
    ['bad permission', minimal('', 'Manifests:\n  - Artifacts:\n      - URI: s3://b/x\n        Permission: { Read: EVERYONE }\n'), /Artifacts\[0\]\.Permission\.Read must be one of NONE, OWNER, ALL/],
    ['duplicate artifact file', minimal('', 'Manifests:\n  - Artifacts:\n      - URI: s3://b/1/x.js\n      - URI: s3://b/2/x.js\n'), /file name "x\.js" is used twice/],
    ['artifact without URI', minimal('', 'Manifests:\n  - Artifacts:\n      - Unarchive: ZIP\n'), /Manifests\[0\]\.Artifacts\[0\]\.URI is required/],
    ['bad platform regex', minimal('', "Manifests:\n  - Platform:\n      architecture: '/(arm/'\n"), /Manifests\[0\]\.Platform\.architecture: \/\(arm\/ is not a valid regular expression/],
    ['bad default configuration', minimal('ComponentConfiguration:\n  DefaultConfiguration: 3\n'), /ComponentConfiguration\.DefaultConfiguration must be a mapping/],
    ['bad global lifecycle step', minimal('Lifecycle:\n  all:\n    Run: [1]\n', 'Manifests:\n  - Platform: { os: linux }\n'), /Lifecycle \(selected for Manifests\[0\] with Selections \[all\]\)\.Run must be a script string or a mapping/],
  ])('rejects %s, naming the file and key', (_what, text, message) => {
    expect(error(text).message).toMatch(message);
  });

  test('a duplicate YAML key is an error', () => {
    expect(error(minimal('ComponentDescription: a\nComponentDescription: b\n')).message).toMatch(/recipe\.yaml: not valid YAML or JSON: .*[Mm]ap keys must be unique/);
  });
});

describe('selectManifest', () => {
  const recipe = parse(`
RecipeFormatVersion: '2020-01-25'
ComponentName: com.example.Multi
ComponentVersion: 1.0.0
Manifests:
  - Name: windows
    Platform: { os: windows }
    Lifecycle: { Run: win }
  - Name: arm 32
    Platform: { os: linux, architecture: '/^arm(hf)?$/' }
    Lifecycle: { Run: arm }
  - Name: amd64 or aarch64
    Platform: { os: linux, architecture: [amd64, aarch64] }
    Lifecycle: { Run: x64 }
  - Name: anything with a GPU
    Platform: { os: '*', gpu: '*' }
    Lifecycle: { Run: any }
`);

  test('first match wins: exact, list, /regex/ and *', () => {
    expect(selectManifest(recipe, LINUX_AMD64).lifecycle.run?.script).toBe('x64');
    expect(selectManifest(recipe, { os: 'linux', architecture: 'aarch64' }).lifecycle.run?.script).toBe('x64');
    expect(selectManifest(recipe, LINUX_ARM).lifecycle.run?.script).toBe('arm');
    expect(selectManifest(recipe, { os: 'windows', architecture: 'amd64' }).lifecycle.run?.script).toBe('win');
    // '*' also matches a key the platform does not have (gpu).
    expect(selectManifest(recipe, { os: 'darwin', architecture: 'x86' }).lifecycle.run?.script).toBe('any');
  });

  test('a regex must match the whole label', () => {
    const r = parse(minimal('', "Manifests:\n  - Platform: { architecture: '/arm/' }\n    Lifecycle: { Run: arm }\n"));
    expect(selectManifest(r, { os: 'linux', architecture: 'arm' }).lifecycle.run?.script).toBe('arm');
    expect(() => selectManifest(r, { os: 'linux', architecture: 'aarch64-arm' })).toThrow(RecipeError);
  });

  test('no matching manifest is a RecipeError naming the platform', () => {
    const r = parse(minimal('', 'Manifests:\n  - Platform: { os: windows }\n    Lifecycle: { Run: win }\n'));
    expect(() => selectManifest(r, LINUX_AMD64)).toThrow(/recipe\.yaml: no manifest matches platform \{"os":"linux","architecture":"amd64"\}/);
  });

  test('a manifest without Lifecycle takes the global Lifecycle filtered by its Selections', () => {
    const r = parse(`
RecipeFormatVersion: '2020-01-25'
ComponentName: com.example.Global
ComponentVersion: 1.0.0
Lifecycle:
  all:
    Setenv: { WHO: all }
    Install: install-all
  linux:
    Install: install-linux
    Run:
      Script:
        arm: run-arm
        all: run-default
Manifests:
  - Platform: { os: linux, architecture: arm }
    Selections: [arm, linux]
  - Platform: { os: linux }
    Selections: [linux]
  - Platform: { os: darwin }
  - Platform: { os: windows }
    Lifecycle: { Run: own }
`);
    const arm = selectManifest(r, LINUX_ARM).lifecycle;
    expect(arm.install?.script).toBe('install-linux');
    expect(arm.run?.script).toBe('run-arm');
    expect(arm.setenv).toEqual({});
    const amd = selectManifest(r, LINUX_AMD64).lifecycle;
    expect(amd.run?.script).toBe('run-default');
    // No Selections: only `all` applies.
    const mac = selectManifest(r, { os: 'darwin', architecture: 'aarch64' }).lifecycle;
    expect(mac).toEqual({ setenv: { WHO: 'all' }, install: { script: 'install-all', requiresPrivilege: false, setenv: {} } });
    // A manifest's own Lifecycle wins over the global one.
    expect(selectManifest(r, { os: 'windows', architecture: 'amd64' }).lifecycle.run?.script).toBe('own');
  });

  test('a recipe with no lifecycle at all gives an empty lifecycle', () => {
    const r = parse(minimal('', 'Manifests:\n  - Platform: { os: linux }\n'));
    expect(selectManifest(r, LINUX_AMD64)).toEqual({ lifecycle: { setenv: {} }, artifacts: [] });
  });
});

describe('currentPlatform', () => {
  test('maps Node names to Greengrass names', () => {
    const p = currentPlatform();
    const expected: Record<string, string> = { x64: 'amd64', arm64: 'aarch64', arm: 'arm', ia32: 'x86' };
    expect(p.os).toBe('linux');
    expect(p.architecture).toBe(expected[process.arch]);
  });
});

describe('loadRecipeDir', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync('/tmp/gg-');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('reads every .json/.yaml/.yml file under the folder, recursively, and nothing else', () => {
    fs.mkdirSync(path.join(dir, 'nested', 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a.yaml'), minimal().replace('com.example.Min', 'com.example.A'));
    fs.writeFileSync(path.join(dir, 'nested', 'b.YML'), minimal().replace('com.example.Min', 'com.example.B'));
    fs.writeFileSync(path.join(dir, 'nested', 'deeper', 'c-2.0.0.json'), JSON.stringify({ RecipeFormatVersion: '2020-01-25', ComponentName: 'com.example.C', ComponentVersion: '2.0.0', Manifests: [{}] }));
    fs.writeFileSync(path.join(dir, 'README.md'), '# not a recipe');
    const recipes = loadRecipeDir(dir);
    expect(recipes.map((r) => `${r.name}@${r.version}`).sort()).toEqual(['com.example.A@1.0.0', 'com.example.B@1.0.0', 'com.example.C@2.0.0']);
    expect(recipes.find((r) => r.name === 'com.example.C')?.source).toBe(path.join(dir, 'nested', 'deeper', 'c-2.0.0.json'));
  });

  test('a bad file is reported with its path; the same version twice is an error', () => {
    fs.writeFileSync(path.join(dir, 'bad.yaml'), minimal().replace('1.0.0', 'one'));
    expect(() => loadRecipeDir(dir)).toThrow(new RegExp(`${path.join(dir, 'bad.yaml')}: ComponentVersion "one"`));
    fs.writeFileSync(path.join(dir, 'bad.yaml'), minimal());
    fs.writeFileSync(path.join(dir, 'copy.json'), JSON.stringify({ RecipeFormatVersion: '2020-01-25', ComponentName: 'com.example.Min', ComponentVersion: '1.0.0', Manifests: [{}] }));
    expect(() => loadRecipeDir(dir)).toThrow(/com\.example\.Min@1\.0\.0 is also declared by/);
    expect(() => loadRecipeDir(path.join(dir, 'missing'))).toThrow(/recipe directory does not exist/);
  });
});
