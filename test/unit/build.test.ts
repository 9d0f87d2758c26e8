import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Ajv from 'ajv';
import YAML from 'yaml';
import { CONFIG_SPECS } from '../../components/registry';
import { IMPLEMENTED_COMPONENTS, SITE_COMPONENT_NAME, accessControlFor, type ComponentName } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { readOnnxMetadata } from '../../components/ml-inference/onnx-meta';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
// gdk's own JSON schemas for gdk-config.json and recipes, copied into the repository (schemas/README.md).
const SCHEMAS = path.join(ROOT, 'schemas');
const pkgVersion = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const URI_PREFIX = 's3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/';
/** The artifacts-only models component is versioned by the models' own metadata (docs/ml-inference.md). */
const MODELS_COMPONENT = 'com.dcmms.edge.Models';
const modelsVersion = readOnnxMetadata(fs.readFileSync(path.join(ROOT, 'models', 'fault.onnx'))).get('version');

/**
 * gdk's schemas are validated by Python's jsonschema, where a pattern may start with the inline
 * flag `(?i)`; JavaScript has no inline flags, so turn a leading `(?i)` into the `i` flag.
 */
const pythonRegExp = Object.assign(
  (pattern: string, flags: string): RegExp => (pattern.startsWith('(?i)') ? new RegExp(pattern.slice(4), `${flags}i`) : new RegExp(pattern, flags)),
  { code: 'new RegExp' },
);

/** gdk validates recipes with every key lower-cased (recipe keys are case-insensitive for gdk and the nucleus). */
function lowerKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(lowerKeys);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k.toLowerCase(), lowerKeys(x)]));
  return v;
}

function readYaml(file: string): Record<string, unknown> {
  return YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

interface Manifest {
  Platform?: { os?: string; architecture?: string };
  Artifacts?: Array<{ URI: string }>;
  Lifecycle?: { Run?: { Script?: string; Setenv?: Record<string, string> } };
}

/** ELF e_machine: which CPU a native binary is built for. */
function elfMachine(file: string): number {
  const b = fs.readFileSync(file).subarray(0, 20);
  expect(b.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
  return b.readUInt16LE(18);
}
const EM = { amd64: 62, aarch64: 183 } as const;

describe('build', () => {
  let out: string;
  let stdout: string;

  beforeAll(async () => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-build-test-'));
    ({ stdout } = await run(process.execPath, ['scripts/build.js', '--gdk', '--no-tools', '--out', out], { cwd: ROOT }));
  });
  afterAll(() => {
    fs.rmSync(out, { recursive: true, force: true });
  });

  const recipeFile = (name: string): string => path.join(out, 'recipes', `${name}-${pkgVersion}.yaml`);

  test('reports what it built', () => {
    expect(stdout).toContain(`com.dcmms.edge.Health@${pkgVersion}`);
    const expected = [...IMPLEMENTED_COMPONENTS.map((c) => `${c.name}-${pkgVersion}.yaml`), `${SITE_COMPONENT_NAME}-${pkgVersion}.yaml`, `${MODELS_COMPONENT}-${modelsVersion}.yaml`, 'recipe.yaml'];
    expect(fs.readdirSync(path.join(out, 'recipes')).sort()).toEqual(expected.sort());
  });

  test('gdk-config.json is valid for gdk and matches package.json', () => {
    const schema = JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'gdk-config.schema.json'), 'utf8')) as Record<string, unknown>;
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'gdk-config.json'), 'utf8')) as { component: Record<string, { version: string; build: unknown }> };
    expect(validate(cfg) ? [] : validate.errors).toEqual([]);
    // Control: the schema does bite (gdk allows one component per project).
    expect(validate({ ...cfg, component: { ...cfg.component, 'com.example.Other': cfg.component[SITE_COMPONENT_NAME] } })).toBe(false);
    expect(Object.keys(cfg.component)).toEqual([SITE_COMPONENT_NAME]);
    expect(cfg.component[SITE_COMPONENT_NAME]?.version).toBe(pkgVersion);
    expect(cfg.component[SITE_COMPONENT_NAME]?.build).toEqual({ build_system: 'custom', custom_build_command: ['node', 'scripts/build.js', '--gdk'] });
  });

  test('every built recipe is valid against the Greengrass recipe schema, and stays so under YAML 1.1', () => {
    const schema = JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'greengrass-recipe.schema.json'), 'utf8')) as Record<string, unknown>;
    const validate = new Ajv({ strict: false, allErrors: true, code: { regExp: pythonRegExp } }).compile(schema);
    for (const f of fs.readdirSync(path.join(out, 'recipes'))) {
      const text = fs.readFileSync(path.join(out, 'recipes', f), 'utf8');
      const recipe = YAML.parse(text) as unknown;
      expect([f, validate(lowerKeys(recipe)) ? [] : validate.errors]).toEqual([f, []]);
      expect(validate(lowerKeys({ ...(recipe as object), ComponentTyp: 'x' }))).toBe(false); // control
      // The nucleus (SnakeYAML) and gdk (PyYAML) read YAML 1.1: dates and versions must stay strings.
      const as11 = YAML.parse(text, { version: '1.1' }) as Record<string, unknown>;
      expect(as11['RecipeFormatVersion']).toBe('2020-01-25');
      expect(as11['ComponentVersion']).toBe(f.startsWith(`${MODELS_COMPONENT}-`) ? modelsVersion : pkgVersion);
    }
  });

  test.each(IMPLEMENTED_COMPONENTS.map((c) => c.name))('%s: configuration, accessControl and artifacts', (name: ComponentName) => {
    const recipe = readYaml(recipeFile(name));
    expect(recipe['ComponentName']).toBe(name);
    expect(recipe['ComponentVersion']).toBe(pkgVersion);
    const conf = (recipe['ComponentConfiguration'] as { DefaultConfiguration: Record<string, unknown> }).DefaultConfiguration;
    const { accessControl, ...defaults } = conf;

    // The accessControl shipped is exactly what the contract says this component may do.
    expect(accessControl).toEqual(accessControlFor(name));

    // DefaultConfiguration validates against the component's schema and equals its defaults object.
    const spec = CONFIG_SPECS[name];
    expect(spec).toBeDefined();
    if (!spec) return;
    expect(() => validateConfig(spec, conf)).not.toThrow();
    expect(defaults).toEqual(spec.defaults);

    const manifests = recipe['Manifests'] as Manifest[];
    // The default build is linux-x64 only and claims no other platform; `--arch all` adds the
    // aarch64 manifests (test/arm64/build.test.ts, docs/build.md "Architectures").
    expect(manifests.map((m) => m.Platform)).toEqual([{ os: 'linux', architecture: 'amd64' }]);
    const dir = path.join(out, 'artifacts', name, pkgVersion);
    for (const m of manifests) {
      const arch = m.Platform?.architecture as keyof typeof EM;
      const files = (m.Artifacts ?? []).map((a) => {
        expect(a.URI.startsWith(URI_PREFIX)).toBe(true);
        return a.URI.slice(URI_PREFIX.length);
      });
      for (const f of files) expect(fs.existsSync(path.join(dir, f))).toBe(true);
      expect(files).toContain('main.js');
      // Every component talks IPC, so every one ships aws-crt; others add their own natives.
      const natives = files.filter((f) => f.endsWith('.node'));
      const crt = `aws-crt-nodejs-linux-${arch === 'amd64' ? 'x64' : 'arm64'}.node`;
      expect(natives).toContain(crt);
      for (const n of natives) expect(elfMachine(path.join(dir, n))).toBe(EM[arch]);
      // A component may size its heap (--max-old-space-size, --max-semi-space-size); it always runs its bundled main.js.
      expect(m.Lifecycle?.Run?.Script).toMatch(/^node (--max-(old|semi)-space-size=\d+ )*\{artifacts:path\}\/main\.js$/);
      expect(m.Lifecycle?.Run?.Setenv).toMatchObject({ AWS_CRT_NODEJS_BINARY_ABSOLUTE_PATH: `{artifacts:path}/${crt}` });
    }
    expect(fs.statSync(path.join(dir, 'main.js')).size).toBeGreaterThan(10000);
  });

  test('the source recipes keep accessControl out (the build owns it)', () => {
    for (const c of IMPLEMENTED_COMPONENTS) {
      const src = readYaml(path.join(ROOT, 'recipes', `${c.name}.yaml`));
      expect((src['ComponentConfiguration'] as { DefaultConfiguration: Record<string, unknown> }).DefaultConfiguration).not.toHaveProperty('accessControl');
    }
  });

  test('the Site meta component depends HARD on every implemented component at this version; recipe.yaml is it', () => {
    const site = readYaml(recipeFile(SITE_COMPONENT_NAME));
    expect(site['ComponentDependencies']).toEqual(Object.fromEntries(IMPLEMENTED_COMPONENTS.map((c) => [c.name, { VersionRequirement: pkgVersion, DependencyType: 'HARD' }])));
    expect((site['Manifests'] as Manifest[]).every((m) => m.Lifecycle === undefined && m.Artifacts === undefined)).toBe(true);
    expect(site['Lifecycle']).toBeUndefined();
    expect(readYaml(path.join(out, 'recipes', 'recipe.yaml'))).toEqual(site);
    expect(fs.existsSync(path.join(out, 'artifacts', SITE_COMPONENT_NAME, pkgVersion))).toBe(true);
  });

  test('the bundle runs on this machine with the shipped aws-crt binary and exits 1 outside a nucleus', async () => {
    const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
    const dir = path.join(out, 'artifacts', 'com.dcmms.edge.Health', pkgVersion);
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], AWS_CRT_NODEJS_BINARY_ABSOLUTE_PATH: path.join(dir, `aws-crt-nodejs-linux-${arch}.node`) };
    const err = await run(process.execPath, [path.join(dir, 'main.js')], { cwd: out, env, timeout: 20000 }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; stdout?: string },
    );
    expect(err?.code).toBe(1);
    expect(err?.stdout).toContain('"code":"IPC_UNAVAILABLE"');
  });

  test('fails loudly on bad input', async () => {
    const err = await run(process.execPath, ['scripts/build.js', '--no-such-flag'], { cwd: ROOT }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; stderr?: string },
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain('build failed: unknown argument "--no-such-flag"');
  });
});
