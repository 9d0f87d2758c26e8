/**
 * Gateways of both architectures: a build with `--arch all` publishes every component's amd64 and
 * aarch64 manifests with their own artifacts (the arm64 onnxruntime pair as its own zip asset), a
 * fleet with aarch64 gateways synthesises with no warning, and one whose bundle lacks an aarch64
 * manifest is refused at synth. Builds into temporary folders (needs the cross toolchain or the
 * cached arm64 tree: scripts/arm64/toolchain.js).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createApp } from '../../cdk/lib/app';
import { readBuildOutput } from '../../cdk/lib/build-output';
import { ConfigFileError, parseConfig } from '../../cdk/lib/config';
import { rawConfig, render, resourcesOf, tempDir } from './helpers';

jest.setTimeout(600_000);

const ROOT = path.resolve(__dirname, '../..');

function build(arch: 'x64' | 'all'): string {
  const out = path.join(tempDir(`build-${arch}`), 'greengrass-build');
  execFileSync(process.execPath, ['scripts/build.js', '--arch', arch, '--no-tools', '--out', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

/** The real fleets and sites, the first fleet's gateways being amd64 and aarch64. */
function mixedFleetConfig() {
  const doc = rawConfig();
  const fleet = Object.keys(doc.fleets)[0]!;
  doc.fleets[fleet].architectures = ['amd64', 'aarch64'];
  return { config: parseConfig({ fleets: doc.fleets }, { sites: doc.sites }), fleet };
}

const both = build('all');

describe('a fleet with aarch64 gateways', () => {
  const dir = tempDir('synth-arm64');
  const { config } = mixedFleetConfig();
  const { app, stack } = createApp({ config, buildDir: both, lockFile: path.join(dir, 'lock.json'), lockMode: 'record', outdir: path.join(dir, 'cdk.out'), cfnValidation: false });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
  const out = path.join(dir, 'cdk.out');
  const built = readBuildOutput(both);
  const recipes = Object.values(resourcesOf({ toJSON: () => template } as never, 'AWS::GreengrassV2::ComponentVersion')).map((r) => JSON.parse(render(r.Properties?.['InlineRecipe'])) as { ComponentName: string; Manifests: Array<{ Platform?: { architecture?: string }; Artifacts: Array<{ URI: string; Unarchive: string }>; Lifecycle?: unknown }> });

  test('synthesises with no warning and no error', () => {
    const messages = assembly.getStackByName(stack.stackName).messages.filter((m) => m.level !== 'info').map((m) => `${m.level}: ${String(m.entry.data)}`);
    expect(messages).toEqual([]);
  });

  test.each(built.filter((c) => Object.keys(c.artifacts).length > 0 && c.manifests.some((m) => m.architecture)).map((c) => [c.name, c] as const))(
    '%s: the amd64 and aarch64 manifests each point at assets holding exactly their files',
    (name, c) => {
      const published = recipes.find((r) => r.ComponentName === name)!;
      expect(published.Manifests.map((m) => m.Platform?.architecture)).toEqual(['amd64', 'aarch64']);
      for (const m of c.manifests) {
        const artifacts = published.Manifests[m.index]!.Artifacts;
        expect(artifacts).toHaveLength(1 + m.unarchive.length);
        const staged = (uri: string): string => {
          const hash = /([0-9a-f]{64})\.zip$/.exec(uri)![1]!;
          const found = fs.readdirSync(out).find((n) => n === `asset.${hash}` || n.startsWith(`asset.${hash}.`));
          expect(found).toBeDefined();
          return path.join(out, found!);
        };
        // The first: this platform's flat files, byte for byte.
        const folder = staged(artifacts[0]!.URI);
        const flat = m.files.filter((f) => !m.unarchive.includes(f));
        expect(fs.readdirSync(folder).sort()).toEqual([...flat].sort());
        for (const f of flat) expect(fs.readFileSync(path.join(folder, f)).equals(fs.readFileSync(path.join(c.artifactDir, f)))).toBe(true);
        // Then each zip the recipe unarchives, as it was built, and the lifecycle names its folder by the asset's hash.
        const lifecycle = JSON.stringify(published.Manifests[m.index]!.Lifecycle ?? null);
        m.unarchive.forEach((z, i) => {
          const a = artifacts[1 + i]!;
          expect(a.Unarchive).toBe('ZIP');
          expect(fs.readFileSync(staged(a.URI)).equals(fs.readFileSync(path.join(c.artifactDir, z)))).toBe(true);
          const hash = /([0-9a-f]{64})\.zip$/.exec(a.URI)![1]!;
          expect(lifecycle).toContain(`{artifacts:decompressedPath}/${hash}/`);
          expect(lifecycle).not.toContain(path.basename(z, '.zip'));
        });
      }
    },
  );

  test('MLInference on aarch64 loads the onnxruntime binding from its unpacked zip asset', () => {
    const ml = recipes.find((r) => r.ComponentName === 'com.dcmms.edge.MLInference')!;
    const m = ml.Manifests.find((x) => x.Platform?.architecture === 'aarch64')!;
    const hash = /([0-9a-f]{64})\.zip$/.exec(m.Artifacts[1]!.URI)![1]!;
    expect(JSON.stringify(m.Lifecycle)).toContain(`"DCMMS_ONNXRUNTIME_BINDING":"{artifacts:decompressedPath}/${hash}/onnxruntime_binding.node"`);
  });

  test("the fleet's Token Exchange role may read the aarch64 assets too", () => {
    const roles = JSON.stringify(Object.values(template.Resources).filter((r) => r.Type === 'AWS::IAM::Policy'));
    const ml = recipes.find((r) => r.ComponentName === 'com.dcmms.edge.MLInference')!;
    for (const a of ml.Manifests.flatMap((m) => m.Artifacts)) expect(roles).toContain(/([0-9a-f]{64}\.zip)$/.exec(a.URI)![1]);
  });
});

describe('architecture checks', () => {
  test('a fleet with aarch64 gateways and a build without linux-arm64 is refused, naming the components and the fix', () => {
    const x64 = build('x64');
    const dir = tempDir('synth-x64');
    const { config, fleet } = mixedFleetConfig();
    expect(() => createApp({ config, buildDir: x64, lockFile: path.join(dir, 'lock.json'), lockMode: 'record', outdir: path.join(dir, 'cdk.out'), cfnValidation: false, nag: false })).toThrow(
      new RegExp(`fleet ${fleet} has amd64 and aarch64 gateways, but site .*com\\.dcmms\\.edge\\.Processor@\\d+\\.\\d+\\.\\d+ \\(no aarch64 manifest\\).*npm run build -- --arch all`),
    );
  });

  test('fleets are amd64 unless they say otherwise; an unknown architecture is refused', () => {
    const doc = rawConfig();
    for (const f of Object.values(doc.fleets)) delete f.architectures;
    expect(parseConfig({ fleets: doc.fleets }, { sites: doc.sites }).fleets.map((f) => f.architectures)).toEqual(Object.keys(doc.fleets).map(() => ['amd64']));
    const first = Object.keys(doc.fleets)[0]!;
    doc.fleets[first].architectures = ['arm64'];
    expect(() => parseConfig({ fleets: doc.fleets }, { sites: doc.sites })).toThrow(ConfigFileError);
    expect(() => parseConfig({ fleets: doc.fleets }, { sites: doc.sites })).toThrow(/architectures\/0 must be equal to one of the allowed values/);
  });
});
