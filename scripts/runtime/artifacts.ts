/**
 * The component store's artifacts: where they live, their digest check, permissions and ZIP
 * unarchiving (Greengrass Developer Guide, "AWS IoT Greengrass component recipe reference",
 * Artifacts; nucleus componentmanager/ComponentStore.java).
 *
 *   <root>/packages/artifacts/<name>/<version>/<file>
 *   <root>/packages/artifacts-unarchived/<name>/<version>/<zip base name>/...
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import yauzl from 'yauzl';
import type { Artifact } from './recipe';

export class ArtifactError extends Error {}

export function artifactsPath(root: string, name: string, version: string): string {
  return path.join(root, 'packages', 'artifacts', name, version);
}

export function unarchivedPath(root: string, name: string, version: string): string {
  return path.join(root, 'packages', 'artifacts-unarchived', name, version);
}

function mode(a: Artifact): number {
  // Permission.Read/Execute: NONE | OWNER | ALL (defaults OWNER / NONE). The owner keeps write so
  // a later local deployment of the same version can replace the file, as the CLI's copy does.
  let m = 0o200;
  if (a.permission.read === 'OWNER') m |= 0o400;
  if (a.permission.read === 'ALL') m |= 0o444;
  if (a.permission.execute === 'OWNER') m |= 0o100;
  if (a.permission.execute === 'ALL') m |= 0o111;
  return m;
}

function verifyDigest(file: string, a: Artifact, component: string): void {
  if (!a.digest) return;
  const algorithm = (a.algorithm ?? 'SHA-256').toUpperCase();
  if (algorithm !== 'SHA-256') throw new ArtifactError(`${component}: artifact ${a.fileName}: unsupported digest algorithm ${a.algorithm} (SHA-256 is supported)`);
  // The cloud writes the digest as base64 of the raw SHA-256 (ComponentStore / RecipeLoader).
  const actual = createHash('sha256').update(fs.readFileSync(file)).digest('base64');
  if (actual !== a.digest) throw new ArtifactError(`${component}: artifact ${a.fileName} digest mismatch (expected ${a.digest}, got ${actual})`);
}

/** Extracts a ZIP, refusing entries that would land outside the target (zip-slip). */
export function unzip(zipFile: string, targetDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipFile, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(new ArtifactError(`cannot open ${path.basename(zipFile)}: ${err?.message}`));
      const fail = (e: Error): void => {
        zip.close();
        reject(e instanceof ArtifactError ? e : new ArtifactError(`${path.basename(zipFile)}: ${e.message}`));
      };
      zip.on('error', fail);
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        const dest = path.resolve(targetDir, entry.fileName);
        if (dest !== targetDir && !dest.startsWith(targetDir + path.sep)) {
          return fail(new ArtifactError(`${path.basename(zipFile)}: entry ${entry.fileName} escapes the target folder`));
        }
        if (entry.fileName.endsWith('/')) {
          fs.mkdirSync(dest, { recursive: true });
          return zip.readEntry();
        }
        fs.mkdirSync(path.dirname(dest), { recursive: true });
        zip.openReadStream(entry, (e, rs) => {
          if (e || !rs) return fail(e ?? new Error('no stream'));
          const unixMode = (entry.externalFileAttributes >>> 16) & 0o777;
          const ws = fs.createWriteStream(dest, { mode: unixMode || 0o644 });
          rs.on('error', fail);
          ws.on('error', fail);
          ws.on('close', () => zip.readEntry());
          rs.pipe(ws);
        });
      });
      zip.readEntry();
    });
  });
}

/**
 * Checks every artifact of a component is in the store, verifies digests, applies permissions and
 * unarchives ZIPs. Throws ArtifactError naming the component and file.
 */
export async function prepareArtifacts(root: string, name: string, version: string, artifacts: Artifact[]): Promise<void> {
  const dir = artifactsPath(root, name, version);
  for (const a of artifacts) {
    const file = path.join(dir, a.fileName);
    if (!fs.existsSync(file)) {
      throw new ArtifactError(`${name}-${version}: artifact ${a.fileName} (${a.uri}) not found in ${dir}; give it with --artifactDir <dir>/${name}/${version}/${a.fileName}`);
    }
    verifyDigest(file, a, name);
    fs.chmodSync(file, mode(a));
    if (a.unarchive === 'ZIP') {
      const target = path.join(unarchivedPath(root, name, version), path.basename(a.fileName, path.extname(a.fileName)));
      fs.rmSync(target, { recursive: true, force: true });
      fs.mkdirSync(target, { recursive: true });
      await unzip(file, target);
    }
  }
}
