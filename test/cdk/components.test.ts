/**
 * Each built recipe becomes one GreengrassV2 component version whose artifacts are CDK assets,
 * and the lock file keeps published versions immutable.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readBuildOutput } from '../../cdk/lib/build-output';
import { checkLock, LockError, readLock } from '../../cdk/lib/lock';
import { UPLINK_SM_SWITCH } from '../../cdk/lib/stream-manager';
import { paths, render, resourcesOf, synthTemplate, tempDir } from './helpers';

const built = readBuildOutput(paths.buildDir);
const { template, dir } = synthTemplate();
const versions = resourcesOf(template, 'AWS::GreengrassV2::ComponentVersion');
const recipes = Object.entries(versions).map(([id, r]) => ({ id, r, recipe: JSON.parse(render(r.Properties?.['InlineRecipe'])) as Record<string, any> }));

describe('component versions', () => {
  test('one component version per built recipe, same name and version, retained', () => {
    expect(built.length).toBeGreaterThanOrEqual(2);
    // Besides the built ones, the two versions of the Uplink's Stream Manager switch (test/cdk/stream-manager.test.ts).
    const published = recipes.filter((x) => x.recipe.ComponentName !== UPLINK_SM_SWITCH);
    expect(published.map((x) => `${x.recipe.ComponentName}@${x.recipe.ComponentVersion}`).sort()).toEqual(built.map((c) => `${c.name}@${c.version}`).sort());
    expect(recipes.length - published.length).toBe(2);
    for (const x of recipes) expect(x.r.DeletionPolicy).toBe('Retain');
  });

  test.each(built.filter((c) => Object.keys(c.artifacts).length > 0).map((c) => [c.name, c] as const))('%s: every manifest points at a zip asset with exactly its files', (_name, c) => {
    const x = recipes.find((r) => r.recipe.ComponentName === c.name)!;
    for (const m of c.manifests) {
      const manifest = x.recipe.Manifests[m.index];
      // One zip of the flat files, and one asset per zip the recipe unarchives (test/cdk/architectures.test.ts).
      expect(manifest.Artifacts).toHaveLength(1 + m.unarchive.length);
      const art = manifest.Artifacts[0];
      // s3://<asset bucket>/<hash>.zip, unarchived so the files keep their names.
      expect(art.URI).toMatch(/^s3:\/\/.+\/([0-9a-f]{64})\.zip$/);
      expect(art.Unarchive).toBe('ZIP');
      const hash = /([0-9a-f]{64})\.zip$/.exec(art.URI)![1]!;
      const lifecycle = JSON.stringify(manifest.Lifecycle ?? null);
      expect(lifecycle).not.toContain('{artifacts:path}');
      // A component that runs (Models carries files only, and has no lifecycle).
      if (manifest.Lifecycle !== undefined) expect(lifecycle).toContain(`{artifacts:decompressedPath}/${hash}/main.js`);
      // A dependency's artifacts are named by their unzipped folder too.
      expect(lifecycle).not.toMatch(/\{[A-Za-z0-9.]+:artifacts:path\}/);
      for (const [, dep, folder] of lifecycle.matchAll(/\{([A-Za-z0-9.]+):artifacts:decompressedPath\}\/([0-9a-f]{64})/g)) {
        const d = recipes.find((r) => r.recipe.ComponentName === dep)!;
        expect(d.recipe.Manifests.map((dm: { Artifacts: { URI: string }[] }) => /([0-9a-f]{64})\.zip$/.exec(dm.Artifacts[0]!.URI)![1])).toContain(folder);
      }
      // The staged asset holds this platform's files and nothing else, byte for byte.
      // CDK 2.27x stages a directory asset as `asset.<hash>.<n>`.
      const out = path.join(dir, 'cdk.out');
      const stagedName = fs.readdirSync(out).find((n) => n === `asset.${hash}` || n.startsWith(`asset.${hash}.`));
      expect(stagedName).toBeDefined();
      const staged = path.join(out, stagedName!);
      const flat = m.files.filter((f) => !m.unarchive.includes(f));
      expect(fs.readdirSync(staged).sort()).toEqual([...flat].sort());
      for (const f of flat) expect(fs.readFileSync(path.join(staged, f)).equals(fs.readFileSync(path.join(c.artifactDir, f)))).toBe(true);
    }
  });

  test("MLInference finds the models in the unzipped folder of com.dcmms.edge.Models's asset", () => {
    const ml = recipes.find((x) => x.recipe.ComponentName === 'com.dcmms.edge.MLInference')!;
    const models = recipes.find((x) => x.recipe.ComponentName === 'com.dcmms.edge.Models')!;
    const folder = /([0-9a-f]{64})\.zip$/.exec(models.recipe.Manifests[0].Artifacts[0].URI)![1];
    for (const m of ml.recipe.Manifests) expect(m.Lifecycle.Run.Setenv.DCMMS_MODELS_DIR).toBe(`{com.dcmms.edge.Models:artifacts:decompressedPath}/${folder}`);
  });

  test('the Site bundle is created after the components it depends on', () => {
    const site = recipes.find((x) => x.recipe.ComponentName === 'com.dcmms.edge.Site')!;
    for (const dep of Object.keys(site.recipe.ComponentDependencies ?? {})) {
      const d = recipes.find((x) => x.recipe.ComponentName === dep)!;
      expect(site.r.DependsOn).toContain(d.id);
    }
  });
});

describe('artifact lock', () => {
  const health = built.find((c) => Object.keys(c.artifacts).length > 0)!;
  const input = built.map((c) => ({ ...c, assets: ['a.zip'] }));

  test('record mode writes every name@version; verify then passes', () => {
    const file = path.join(tempDir('lock'), 'lock.json');
    checkLock(file, input, 'record');
    expect(Object.keys(readLock(file).components).sort()).toEqual(built.map((c) => `${c.name}@${c.version}`).sort());
    expect(() => checkLock(file, input, 'verify')).not.toThrow();
  });

  test('a changed artifact under an unchanged version fails, in both modes, naming the file', () => {
    const file = path.join(tempDir('lock'), 'lock.json');
    checkLock(file, input, 'record');
    const changed = input.map((c) => (c.name === health.name ? { ...c, artifacts: { ...c.artifacts, 'main.js': '0'.repeat(64) } } : c));
    for (const mode of ['verify', 'record'] as const) {
      expect(() => checkLock(file, changed, mode)).toThrow(LockError);
      expect(() => checkLock(file, changed, mode)).toThrow(`${health.name}@${health.version}: artifact main.js`);
    }
  });

  test('an unrecorded (unreleased) version passes verify mode with a warning naming the command that records it', () => {
    const file = path.join(tempDir('lock'), 'lock.json');
    const warnings: string[] = [];
    expect(() => checkLock(file, input, 'verify', (_keys, message) => warnings.push(message))).not.toThrow();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/not yet released .*npx cdk synth -c dcmms:lock=record/);
    expect(fs.existsSync(file)).toBe(false);
  });

  test('the app refuses to synth a build that differs from the lock', () => {
    const lockFile = path.join(tempDir('lock'), 'lock.json');
    checkLock(lockFile, built.map((c) => ({ ...c, assets: [] })), 'record'); // asset keys differ from the real ones
    expect(() => synthTemplate({ lockFile, lockMode: 'verify' })).toThrow(/immutable/);
  });

  test('a missing build output fails with a clear message', () => {
    expect(() => synthTemplate({ buildDir: tempDir('nobuild') })).toThrow(/run `npm run build` first/);
  });
});
