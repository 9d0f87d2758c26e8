/**
 * Where the app finds the project. `npx cdk synth` runs a bundle written to cdk.out/.app.js, and
 * jest runs the sources, so `__dirname` differs between the two (asset paths built from it fail
 * with CannotFindAsset in one of them). The project root is therefore found from the working
 * directory: the nearest ancestor holding cdk.json. `DCMMS_ROOT` overrides it.
 */
import fs from 'node:fs';
import path from 'node:path';

export function projectRoot(start: string = process.cwd()): string {
  const fromEnv = process.env['DCMMS_ROOT'];
  if (fromEnv) return path.resolve(fromEnv);
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'cdk.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the project root (a folder with cdk.json) above ${start}; run from the project or set DCMMS_ROOT`);
    dir = parent;
  }
}

export interface ProjectPaths {
  readonly root: string;
  /** greengrass-build/ written by `npm run build`: recipes/ and artifacts/<Name>/<Version>/. */
  readonly buildDir: string;
  /** Committed record of every published component version's artifact hashes. */
  readonly lockFile: string;
  readonly fleetsFile: string;
  readonly sitesFile: string;
}

export function projectPaths(root: string = projectRoot()): ProjectPaths {
  return {
    root,
    buildDir: path.join(root, 'greengrass-build'),
    lockFile: path.join(root, 'cdk', 'artifacts.lock.json'),
    fleetsFile: path.join(root, 'cdk', 'config', 'fleets.json'),
    sitesFile: path.join(root, 'cdk', 'config', 'sites.json'),
  };
}
