/**
 * One AWS::GreengrassV2::ComponentVersion per built recipe, its artifacts uploaded as CDK assets.
 *
 * Artifacts: per manifest (platform), one zip asset holding exactly that manifest's files. A CDK
 * asset's S3 key is its content hash (`<hash>.zip`), so a changed artifact can never overwrite the
 * object an existing version points at; lock.ts additionally
 * refuses a changed artifact under an unchanged version. Why a zip and not one asset per file: a
 * file asset's key is `<hash>.<ext>`, and Greengrass names a downloaded artifact after the last
 * URI segment, so `main.js` would arrive as `<hash>.js`. With `Unarchive: ZIP` the files keep their
 * names under `{artifacts:decompressedPath}/<zip name without .zip>/` (awsdocs greengrass v2
 * component-recipe-reference.md, "Unarchive"), so `{artifacts:path}` in the lifecycle is rewritten
 * to that folder. A component that reads a dependency's artifacts (MLInference names
 * `{com.dcmms.edge.Models:artifacts:path}`) gets that dependency's folder the same way:
 * `{<dependency>:artifacts:decompressedPath}/<its zip name>`, so dependencies are published first.
 *
 * InlineRecipe is create-only: any change replaces the resource, and re-creating an existing
 * name@version fails (ConflictException). So the construct id carries the version, and versions are
 * retained when they leave the template: a deployment pinned to an older version (rollback) still
 * finds it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import { CfnComponentVersion } from 'aws-cdk-lib/aws-greengrassv2';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import type { BuiltComponent, Json, Recipe } from './build-output';
import { UPLINK_COMPONENT, withStreamManagerSwitch } from './stream-manager';

export interface PublishedComponent {
  readonly name: string;
  readonly version: string;
  readonly resource: CfnComponentVersion;
  /** The recipe as published (artifact URIs are tokens until deploy time). */
  readonly recipe: Recipe;
  /** S3 object ARNs of this version's artifacts: what the Token Exchange role may read. */
  readonly artifactObjectArns: readonly string[];
  /** S3 object keys of the artifact assets (plain strings: `<hash>.zip`). */
  readonly assetKeys: readonly string[];
  readonly dependencies: Readonly<Record<string, string>>;
  /** The unzipped folder (`<zip name>`) of the manifest for this architecture. */
  folderFor(architecture: string | undefined): string | undefined;
  /** Platform.architecture of each manifest (undefined: a manifest for every architecture). */
  readonly architectures: readonly (string | undefined)[];
}

export interface ComponentsProps {
  readonly built: readonly BuiltComponent[];
}

const ARTIFACTS_PATH = '{artifacts:path}';

function rewrite(value: Json, from: string, to: string): Json {
  if (typeof value === 'string') return value.split(from).join(to);
  if (Array.isArray(value)) return value.map((v) => rewrite(v, from, to));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v, from, to)]));
  return value;
}

export class Components extends Construct {
  readonly published: ReadonlyMap<string, PublishedComponent>;
  /** The CDK asset bucket (bootstrap), known once one artifact is staged. */
  assetBucket?: IBucket;

  constructor(scope: Construct, id: string, props: ComponentsProps) {
    super(scope, id);
    const published = new Map<string, PublishedComponent>();
    const byName = new Map(props.built.map((c) => [c.name, c]));
    // Dependencies first: a dependent's recipe names their unzipped folders.
    const visit = (c: BuiltComponent, path: string[]): void => {
      if (published.has(c.name)) return;
      if (path.includes(c.name)) throw new Error(`component dependency cycle: ${[...path, c.name].join(' -> ')}`);
      for (const dep of Object.keys(c.dependencies)) {
        const d = byName.get(dep);
        if (d) visit(d, [...path, c.name]);
      }
      published.set(c.name, this.publish(c, published));
    };
    for (const c of props.built) visit(c, []);
    // A bundle's dependencies are created first, so the Site version never names a missing one.
    for (const p of published.values()) {
      for (const dep of Object.keys(p.dependencies)) {
        const d = published.get(dep);
        if (d) p.resource.node.addDependency(d.resource);
      }
    }
    this.published = published;
  }

  private publish(c: BuiltComponent, before: ReadonlyMap<string, PublishedComponent>): PublishedComponent {
    const scope = new Construct(this, `${c.name}-${c.version}`);
    // The Uplink depends on aws.greengrass.StreamManager on Stream Manager fleets only, through a switch component (stream-manager.ts).
    const recipe = (c.name === UPLINK_COMPONENT ? withStreamManagerSwitch(structuredClone(c.recipe)) : structuredClone(c.recipe)) as Recipe;
    if (JSON.stringify(recipe['Lifecycle'] ?? null).includes(ARTIFACTS_PATH)) {
      throw new Error(`${c.name}@${c.version}: a recipe-level Lifecycle uses ${ARTIFACTS_PATH}; put lifecycles in the manifests, whose artifacts differ per platform`);
    }
    const present = fs.existsSync(c.artifactDir) ? fs.readdirSync(c.artifactDir) : [];
    const objectArns: string[] = [];
    const keys: string[] = [];
    const folders: { architecture: string | undefined; folder: string }[] = [];
    const manifests = Array.isArray(recipe['Manifests']) ? recipe['Manifests'] : [];
    for (const m of c.manifests) {
      if (m.files.length === 0) continue;
      // The zips the recipe unarchives go as they are, each its own asset (below); the rest in one.
      const flat = m.files.filter((f) => !m.unarchive.includes(f));
      const asset = new Asset(scope, `Artifacts-${m.name}`, {
        path: c.artifactDir,
        // Only this platform's files: an aarch64 gateway does not download the amd64 binaries.
        exclude: present.filter((f) => !flat.includes(f)),
      });
      this.assetBucket ??= asset.bucket;
      const key = asset.s3ObjectKey;
      if (Token.isUnresolved(key) || !key.endsWith('.zip')) throw new Error(`${c.name}: unexpected asset key ${key}`);
      const folder = path.posix.basename(key, '.zip');
      let manifest = manifests[m.index] as { [k: string]: Json };
      // A zip the recipe unarchives (the arm64 onnxruntime pair, whose names the amd64 files share)
      // is published as its own asset, `<hash>.zip`, so Greengrass unpacks it into
      // {artifacts:decompressedPath}/<hash>/: the recipe's folder (the zip's own name) is rewritten to that.
      const zips: Json[] = [];
      for (const z of m.unarchive) {
        const zipAsset = new Asset(scope, `Unarchive-${m.name}-${z}`, { path: path.join(c.artifactDir, z) });
        const zipKey = zipAsset.s3ObjectKey;
        if (Token.isUnresolved(zipKey) || !zipKey.endsWith('.zip')) throw new Error(`${c.name}: unexpected asset key ${zipKey} for ${z}`);
        const from = `{artifacts:decompressedPath}/${path.posix.basename(z, '.zip')}/`;
        manifest = rewrite(manifest, from, `{artifacts:decompressedPath}/${path.posix.basename(zipKey, '.zip')}/`) as { [k: string]: Json };
        zips.push({ URI: zipAsset.s3ObjectUrl, Unarchive: 'ZIP', Permission: { Read: 'OWNER', Execute: 'NONE' } });
        if (!keys.includes(zipKey)) {
          keys.push(zipKey);
          objectArns.push(zipAsset.bucket.arnForObjects(zipKey));
        }
      }
      for (const dep of Object.keys(c.dependencies)) {
        const ref = `{${dep}:artifacts:path}`;
        if (!JSON.stringify(manifest).includes(ref.replace(/"/g, '\\"'))) continue;
        const depFolder = before.get(dep)?.folderFor(m.architecture);
        if (depFolder === undefined) throw new Error(`${c.name}@${c.version} manifest ${m.name}: names ${ref}, but ${dep} has no artifacts published for ${m.architecture ?? 'this platform'}`);
        manifest = rewrite(manifest, ref, `{${dep}:artifacts:decompressedPath}/${depFolder}`) as { [k: string]: Json };
      }
      folders.push({ architecture: m.architecture, folder });
      manifests[m.index] = {
        ...(rewrite(manifest, ARTIFACTS_PATH, `{artifacts:decompressedPath}/${folder}`) as { [k: string]: Json }),
        Artifacts: [{ URI: asset.s3ObjectUrl, Unarchive: 'ZIP', Permission: { Read: 'OWNER', Execute: 'NONE' } }, ...zips],
      };
      if (!keys.includes(key)) {
        keys.push(key);
        objectArns.push(asset.bucket.arnForObjects(key));
      }
    }
    const resource = new CfnComponentVersion(scope, 'Version', {
      inlineRecipe: Stack.of(this).toJsonString(recipe),
      tags: { 'dcmms:component': c.name, 'dcmms:version': c.version },
    });
    // Kept when a newer version replaces it in the template: devices and rollbacks still use it.
    resource.applyRemovalPolicy(RemovalPolicy.RETAIN);
    // A manifest for any architecture (no `architecture` in its platform) serves every one.
    const folderFor = (architecture: string | undefined): string | undefined =>
      (folders.find((f) => f.architecture === architecture) ?? folders.find((f) => f.architecture === undefined))?.folder;
    return { name: c.name, version: c.version, resource, recipe, artifactObjectArns: objectArns, assetKeys: keys, dependencies: c.dependencies, folderFor, architectures: c.manifests.map((m) => m.architecture) };
  }
}
