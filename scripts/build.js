// @ts-check
/**
 * Build: writes the layout gdk and the Greengrass CLI use (docs/build.md; gdk's BuildCommand.py and
 * the Greengrass CLI's `deployment create --recipeDir --artifactDir`):
 *
 *   greengrass-build/recipes/<ComponentName>-<version>.yaml     one per component, deployable
 *   greengrass-build/recipes/recipe.yaml                         with --gdk: the gdk root (Site)
 *   greengrass-build/artifacts/<ComponentName>/<version>/main.js  esbuild bundle
 *   greengrass-build/artifacts/<ComponentName>/<version>/*.node   native modules per platform
 *   greengrass-build/artifacts/<ComponentName>/<version>/*.zip    a platform's native files that
 *                                                                 share a name with another's (Unarchive: ZIP)
 *   dist/cli.js, dist/bench.js                                   if scripts/cli.ts, scripts/bench/index.ts exist
 *
 * Like `gdk component build`, it deletes greengrass-build/ first. For each recipe it substitutes
 * {COMPONENT_NAME}/{COMPONENT_VERSION}, injects accessControl from the contract
 * (components/lib/contract accessControlFor: the one source of topic permissions), validates the
 * DefaultConfiguration against the component's configuration schema, and checks that every
 * artifact the recipe names was produced and every produced file is named. Any failure exits 1
 * with a message saying what is wrong.
 *
 * Architectures (docs/build.md "Architectures", docs/aarch64.md): linux-x64 always; linux-arm64 with
 * `--arch all`, from the cross-compiled addons scripts/arm64/toolchain.js makes (or finds cached)
 * outside the repository. Without them (`--arch x64`, the default, or no cross toolchain) every
 * recipe is written with its linux/amd64 manifest only, and the build says what it left out: a
 * recipe never claims a platform whose files were not built.
 *
 * Usage: node scripts/build.js [--arch x64|all] [--gdk] [--out DIR] [--no-tools]
 *   --arch A    x64 (default): linux-x64 only; all: linux-x64 and linux-arm64
 *   --gdk       also write recipes/recipe.yaml for gdk-config.json's root component (gdk custom build)
 *   --out DIR   write the greengrass-build layout to DIR instead (tests build into a temp dir)
 *   --no-tools  skip dist/cli.js and dist/bench.js
 */
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const esbuild = require('esbuild');
const YAML = require('yaml');
// LocalHmi's web app, embedded in its main.js in place of components/local-hmi/web-embedded.ts (web/bundle.js).
const { hmiWebPlugin } = require('../components/local-hmi/web/bundle');
const yazl = require('yazl');
const arm64 = require('./arm64/toolchain');

const ROOT = path.resolve(__dirname, '..');
/** Output root; `--out` overrides it (set in main before anything is written). */
let OUT = path.join(ROOT, 'greengrass-build');
const RECIPES_SRC = path.join(ROOT, 'recipes');
const SITE = 'com.dcmms.edge.Site';
/** gdk's artifact URI convention; `gdk component publish` rewrites BUCKET_NAME etc. (docs/build.md). */
const URI_PREFIX = 's3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/';
/**
 * The cross-installed linux-arm64 tree whose addons the aarch64 manifests ship; undefined when
 * linux-arm64 is not built (set in main before any component is built).
 * @type {import('./arm64/toolchain').Arm64Tree | undefined}
 */
let ARM64;

class BuildError extends Error {}

/** @param {string} msg @returns {never} */
function fail(msg) {
  throw new BuildError(msg);
}

/** aws-crt as aws-iot-device-sdk-v2 resolves it (it is nested under the SDK), so the binary matches the bundled JS. */
function awsCrtDir() {
  try {
    const sdk = path.dirname(require.resolve('aws-iot-device-sdk-v2/package.json', { paths: [ROOT] }));
    return path.dirname(require.resolve('aws-crt/package.json', { paths: [sdk] }));
  } catch (err) {
    return fail(`cannot resolve aws-crt from aws-iot-device-sdk-v2 (run npm ci): ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * A native file beside main.js: a copy of `from`, or a zip of `zip` (a platform's files whose
 * names another platform's files also use; the recipe unarchives it into its own folder).
 * @typedef {{ from: string, to: string } | { zip: Array<{ from: string, name: string }>, to: string }} NativeFile
 * @typedef {{ dir: string, name: string, natives: Record<string, NativeFile[]> }} ComponentBuild
 */

/**
 * The natives of each Greengrass platform architecture this build makes, from one list per Node
 * arch: amd64 always, aarch64 when linux-arm64 is built.
 * @param {(nodeArch: 'x64' | 'arm64') => NativeFile[]} list @returns {Record<string, NativeFile[]>}
 */
function perArch(list) {
  return { amd64: list('x64'), ...(ARM64 ? { aarch64: list('arm64') } : {}) };
}

/** aws-crt's prebuilt binary for a Node arch (x64 | arm64), renamed per platform beside main.js. */
/** @param {string} nodeArch @returns {NativeFile} */
function awsCrt(nodeArch) {
  return { from: path.join(awsCrtDir(), 'dist', 'bin', `linux-${nodeArch}-glibc`, 'aws-crt-nodejs.node'), to: `aws-crt-nodejs-linux-${nodeArch}.node` };
}

/**
 * @serialport/bindings-cpp's addon for a Node arch, flat beside main.js (see nativeBindingPlugin):
 * x64 the package's N-API prebuild (glibc), arm64 the one compiled for the arm64 tree (the
 * package's armv8 prebuild would do too; compiling it here keeps one glibc floor for every addon).
 * @param {string} nodeArch @returns {NativeFile}
 */
function serialport(nodeArch) {
  if (nodeArch === 'arm64') return { from: arm64Tree().serialport, to: 'serialport-bindings-linux-arm64.node' };
  let dir;
  try {
    const ms = path.dirname(require.resolve('modbus-serial/package.json', { paths: [ROOT] }));
    const sp = path.dirname(require.resolve('serialport/package.json', { paths: [ms] }));
    dir = path.dirname(require.resolve('@serialport/bindings-cpp/package.json', { paths: [sp] }));
  } catch (err) {
    return fail(`cannot resolve @serialport/bindings-cpp from modbus-serial (run npm ci): ${err instanceof Error ? err.message : String(err)}`);
  }
  return { from: path.join(dir, 'prebuilds', `linux-${nodeArch}`, '@serialport+bindings-cpp.glibc.node'), to: `serialport-bindings-linux-${nodeArch}.node` };
}

/** @returns {import('./arm64/toolchain').Arm64Tree} */
function arm64Tree() {
  if (!ARM64) return fail('internal: a linux-arm64 native was asked for while linux-arm64 is not built');
  return ARM64;
}

/**
 * better-sqlite3's addon: x64 as npm built it here from source (node_modules holds no prebuilt
 * binary), arm64 as npm cross-compiled it in the arm64 tree (scripts/arm64/toolchain.js).
 * @param {string} nodeArch @returns {NativeFile}
 */
function betterSqlite3(nodeArch) {
  if (nodeArch === 'arm64') return { from: arm64Tree().betterSqlite3, to: 'better-sqlite3-linux-arm64.node' };
  let dir;
  try {
    dir = path.dirname(require.resolve('better-sqlite3/package.json', { paths: [ROOT] }));
  } catch (err) {
    return fail(`cannot resolve better-sqlite3 (run npm ci): ${err instanceof Error ? err.message : String(err)}`);
  }
  return { from: path.join(dir, 'build', 'Release', 'better_sqlite3.node'), to: `better-sqlite3-linux-${nodeArch}.node` };
}

/**
 * onnxruntime-node's binding and the onnxruntime library it links against, as the package ships
 * them prebuilt per architecture (bin/napi-v6/linux/<arch>). The binding finds the library through
 * its RUNPATH $ORIGIN, so both lie side by side and the library keeps its soname
 * (libonnxruntime.so.1); the binding is loaded from DCMMS_ONNXRUNTIME_BINDING (onnxRuntimePlugin).
 * Both architectures' libraries are libonnxruntime.so.1 and a version's artifacts share one
 * folder, so the arm64 pair ships zipped (onnxruntime-linux-arm64.zip, `Unarchive: ZIP`) and is
 * unpacked into {artifacts:decompressedPath}/onnxruntime-linux-arm64/; the x64 pair stays flat, as
 * the amd64 manifest has always shipped it.
 * @param {string} nodeArch @returns {NativeFile[]}
 */
function onnxRuntime(nodeArch) {
  let dir;
  try {
    dir = path.dirname(require.resolve('onnxruntime-node/package.json', { paths: [ROOT] }));
  } catch (err) {
    return fail(`cannot resolve onnxruntime-node (run npm ci): ${err instanceof Error ? err.message : String(err)}`);
  }
  const bin = path.join(dir, 'bin', 'napi-v6', 'linux', nodeArch);
  if (nodeArch === 'arm64') {
    return [{ zip: [{ from: path.join(bin, 'onnxruntime_binding.node'), name: 'onnxruntime_binding.node' }, { from: path.join(bin, 'libonnxruntime.so.1'), name: 'libonnxruntime.so.1' }], to: 'onnxruntime-linux-arm64.zip' }];
  }
  return [
    { from: path.join(bin, 'onnxruntime_binding.node'), to: `onnxruntime-binding-linux-${nodeArch}.node` },
    { from: path.join(bin, 'libonnxruntime.so.1'), to: 'libonnxruntime.so.1' },
  ];
}

/**
 * onnxruntime-node requires its binding by a path built from process.platform and process.arch
 * relative to its own folder, which the bundle does not have: the bundle loads the file named by
 * DCMMS_ONNXRUNTIME_BINDING instead (the recipe sets it to the binding shipped beside main.js).
 * @type {import('esbuild').Plugin}
 */
const onnxRuntimePlugin = {
  name: 'onnxruntime-binding',
  setup(build) {
    build.onLoad({ filter: /onnxruntime-node[\\/]dist[\\/]binding\.js$/ }, (args) => {
      const src = fs.readFileSync(args.path, 'utf8');
      const pattern = /require\(`\.\.\/bin\/napi-v\d+\/\$\{process\.platform\}\/\$\{process\.arch\}\/onnxruntime_binding\.node`\)/;
      if (!pattern.test(src)) fail(`${args.path}: the binding require is not where the build expects it (onnxruntime-node changed; update onnxRuntimePlugin)`);
      const load = `(() => { const f = process.env.DCMMS_ONNXRUNTIME_BINDING; if (!f) throw new Error('DCMMS_ONNXRUNTIME_BINDING is not set: it names the onnxruntime-node binding shipped beside main.js, which the recipe sets'); return require(f); })()`;
      return { contents: src.replace(pattern, load), loader: 'js' };
    });
  },
};

/**
 * Native addons loaded through node-gyp-build look for their binary relative to their package
 * folder, which does not exist once esbuild has bundled the JavaScript. For each such package
 * this plugin hands the bundle a node-gyp-build that loads the file named by an environment
 * variable instead (the recipe sets it to the binary shipped beside main.js), and falls back to
 * the real node-gyp-build when the variable is unset (running from node_modules).
 * @type {import('esbuild').Plugin}
 */
const nativeBindingPlugin = {
  name: 'native-binding',
  setup(build) {
    /** importer package folder fragment -> environment variable naming its binary */
    const envByPackage = { [`${path.sep}@serialport${path.sep}bindings-cpp${path.sep}`]: 'DCMMS_SERIALPORT_BINDING' };
    build.onResolve({ filter: /^node-gyp-build$/ }, (args) => {
      const pkg = Object.keys(envByPackage).find((k) => args.importer.includes(k));
      return pkg ? { path: envByPackage[pkg], namespace: 'native-binding' } : undefined;
    });
    build.onLoad({ filter: /.*/, namespace: 'native-binding' }, (args) => ({
      contents: [
        `const fallback = require('node-gyp-build');`,
        `module.exports = function load(dir) {`,
        `  const file = process.env[${JSON.stringify(args.path)}];`,
        `  return file ? require(file) : fallback(dir);`,
        `};`,
      ].join('\n'),
      resolveDir: ROOT,
      loader: 'js',
    }));
  },
};

/**
 * The components this build ships: folder under components/, Greengrass name, and the native
 * files each Greengrass platform architecture needs beside main.js (keys are recipe
 * `Platform.architecture` values; perArch leaves aarch64 out when linux-arm64 is not built).
 * @type {() => ComponentBuild[]}
 */
const COMPONENTS = () => [
  { dir: 'health', name: 'com.dcmms.edge.Health', natives: perArch((a) => [awsCrt(a)]) },
  { dir: 'modbus-adapter', name: 'com.dcmms.edge.ModbusAdapter', natives: perArch((a) => [awsCrt(a), serialport(a)]) },
  // The store, the outbox, the rollups, the alarm journals, the audit log: better-sqlite3.
  { dir: 'processor', name: 'com.dcmms.edge.Processor', natives: perArch((a) => [awsCrt(a), betterSqlite3(a)]) },
  { dir: 'aggregator', name: 'com.dcmms.edge.Aggregator', natives: perArch((a) => [awsCrt(a), betterSqlite3(a)]) },
  { dir: 'analytics', name: 'com.dcmms.edge.Analytics', natives: perArch((a) => [awsCrt(a), betterSqlite3(a)]) },
  { dir: 'uplink', name: 'com.dcmms.edge.Uplink', natives: perArch((a) => [awsCrt(a), betterSqlite3(a)]) },
  { dir: 'ml-inference', name: 'com.dcmms.edge.MLInference', natives: perArch((a) => [awsCrt(a), betterSqlite3(a), ...onnxRuntime(a)]) },
  // serialport's addon for the SMS alarm output's modem, as the ModbusAdapter ships it.
  { dir: 'local-control', name: 'com.dcmms.edge.LocalControl', natives: perArch((a) => [awsCrt(a), betterSqlite3(a), serialport(a)]) },
  // Users, sessions and audit, and the store reader; the web app is inside main.js (hmiWebPlugin).
  { dir: 'local-hmi', name: 'com.dcmms.edge.LocalHmi', natives: perArch((a) => [awsCrt(a), betterSqlite3(a)]) },
];

/**
 * Components that carry files and nothing else (no code, no lifecycle, not in the contract): the ML
 * models. A new version of one is how a site gets new models (docs/ml-inference.md "Models"). Its
 * version is the models' own (the `version` in every file's ONNX metadata, which must agree), not
 * the code's: MLInference depends on it by a range of one major version (the features' layout).
 * @type {() => Array<{ name: string, from: string, files: string[], dependent: string }>}
 */
const ARTIFACT_COMPONENTS = () => [
  { name: 'com.dcmms.edge.Models', from: path.join(ROOT, 'models'), files: ['fault.onnx', 'anomaly.onnx', 'forecast.onnx'], dependent: 'com.dcmms.edge.MLInference' },
];

/** Extra bundles for the repo's own tools, built only if their entry exists. */
const TOOLS = [
  { entry: 'scripts/cli.ts', out: 'dist/cli.js', executable: true },
  { entry: 'scripts/bench/index.ts', out: 'dist/bench.js', executable: false },
];

/** @param {string} file @returns {any} */
function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    return fail(`cannot read ${path.relative(ROOT, file)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Load the TypeScript contract and config specs by bundling them (all dependencies inlined) to a
 * temporary CommonJS file: one source of truth for topics, policies and schemas.
 * @returns {Promise<any>}
 */
async function loadProjectModules() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcmms-build-'));
  const outfile = path.join(tmp, 'project.js');
  try {
    await esbuild.build({
      stdin: {
        contents: [
          "export { accessControlFor, COMPONENTS, IMPLEMENTED_COMPONENTS } from './components/lib/contract';",
          "export { CONFIG_SPECS } from './components/registry';",
          "export { validateConfig } from './components/lib/config';",
          "export { readOnnxMetadata } from './components/ml-inference/onnx-meta';",
        ].join('\n'),
        resolveDir: ROOT,
        loader: 'ts',
        sourcefile: 'build-entry.ts',
      },
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile,
      logLevel: 'silent',
    });
    return require(outfile);
  } catch (err) {
    return fail(`cannot load the contract: ${describeEsbuildError(err)}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** @param {unknown} err */
function describeEsbuildError(err) {
  const errors = err && typeof err === 'object' && 'errors' in err && Array.isArray(err.errors) ? err.errors : [];
  if (errors.length === 0) return err instanceof Error ? err.message : String(err);
  return errors
    .map((/** @type {any} */ e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : e.text))
    .join('\n  ');
}

/**
 * Read a source recipe with the gdk placeholders substituted.
 * @param {string} name @param {string} version @returns {any}
 */
function readRecipe(name, version) {
  const file = path.join(RECIPES_SRC, `${name}.yaml`);
  if (!fs.existsSync(file)) fail(`missing recipe ${path.relative(ROOT, file)}`);
  const text = fs.readFileSync(file, 'utf8').replaceAll('{COMPONENT_NAME}', name).replaceAll('{COMPONENT_VERSION}', version);
  let recipe;
  try {
    recipe = YAML.parse(text);
  } catch (err) {
    fail(`${path.relative(ROOT, file)} is not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!recipe || typeof recipe !== 'object') fail(`${path.relative(ROOT, file)} is not a YAML mapping`);
  if (recipe.ComponentName !== name) fail(`${path.relative(ROOT, file)}: ComponentName is ${JSON.stringify(recipe.ComponentName)}, expected ${name}`);
  if (recipe.ComponentVersion !== version) fail(`${path.relative(ROOT, file)}: ComponentVersion must be '{COMPONENT_VERSION}'`);
  if (!Array.isArray(recipe.Manifests) || recipe.Manifests.length === 0) fail(`${path.relative(ROOT, file)}: Manifests must be a non-empty list`);
  return recipe;
}

/** @param {string} file @param {any} recipe @param {string} source */
function writeRecipe(file, recipe, source) {
  const header = `# Generated by scripts/build.js from ${source}; do not edit.\n`;
  // YAML 1.1 rules when writing: the nucleus (SnakeYAML) and gdk (PyYAML) read YAML 1.1, where an
  // unquoted 2020-01-25 is a date and 1.0 a float; this makes the writer quote such strings.
  fs.writeFileSync(file, header + YAML.stringify(recipe, { lineWidth: 0, version: '1.1' }));
}

/**
 * A zip that is the same bytes for the same files (fixed times and modes): artifacts are hashed
 * into cdk/artifacts.lock.json, so an unchanged build must not change them.
 * @param {string} file @param {Array<{ from: string, name: string }>} entries @returns {Promise<void>}
 */
function writeZip(file, entries) {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    for (const e of entries) zip.addBuffer(fs.readFileSync(e.from), e.name, { mtime: new Date(Date.UTC(2020, 0, 1)), mode: 0o100644 });
    const out = fs.createWriteStream(file);
    out.on('close', () => resolve());
    out.on('error', reject);
    zip.outputStream.on('error', reject).pipe(out);
    zip.end();
  });
}

/**
 * Every component runs the same way on every architecture: the recipe has a linux/amd64 and a
 * linux/aarch64 manifest whose lifecycles are the same once the environment variables that name a
 * native file (which differ per architecture) are set aside.
 * @param {any} recipe @param {string} name
 */
function checkSameLifecycle(recipe, name) {
  const byArch = (/** @type {string} */ arch) => recipe.Manifests.find((/** @type {any} */ m) => m?.Platform?.os === 'linux' && m?.Platform?.architecture === arch);
  const amd64 = byArch('amd64');
  const aarch64 = byArch('aarch64');
  if (!amd64 || !aarch64) fail(`recipes/${name}.yaml: needs a linux/amd64 and a linux/aarch64 manifest to build linux-arm64 (found ${recipe.Manifests.map((/** @type {any} */ m) => `${m?.Platform?.os}/${m?.Platform?.architecture}`).join(', ')})`);
  const NATIVE = /\{artifacts:(path|decompressedPath)\}\/.*\.(node|so(\.\d+)*)$/;
  const shape = (/** @type {any} */ lc) =>
    JSON.stringify(lc ?? null, (k, v) => (typeof v === 'string' && NATIVE.test(v) ? '<native file>' : v));
  if (shape(amd64.Lifecycle) !== shape(aarch64.Lifecycle)) {
    fail(`recipes/${name}.yaml: the linux/aarch64 lifecycle differs from the linux/amd64 one beyond the native files it names:\n  amd64:   ${shape(amd64.Lifecycle)}\n  aarch64: ${shape(aarch64.Lifecycle)}`);
  }
}

/**
 * Check that each manifest names exactly the files produced for its platform.
 * @param {any} recipe @param {ComponentBuild} c @param {string} artifactDir
 */
function checkArtifacts(recipe, c, artifactDir) {
  for (const [i, m] of recipe.Manifests.entries()) {
    const arch = m?.Platform?.architecture;
    const where = `recipes/${c.name}.yaml Manifests[${i}] (${arch ?? 'no architecture'})`;
    const natives = c.natives[arch];
    if (!natives) fail(`${where}: the build table has no native files for architecture ${JSON.stringify(arch)} (known: ${Object.keys(c.natives).join(', ')})`);
    const expected = ['main.js', ...natives.map((n) => n.to)].sort();
    const uris = (Array.isArray(m.Artifacts) ? m.Artifacts : []).map((/** @type {any} */ a) => String(a?.URI ?? ''));
    const named = [];
    for (const uri of uris) {
      if (!uri.startsWith(URI_PREFIX)) fail(`${where}: artifact URI ${uri} must start with ${URI_PREFIX}`);
      const fileName = uri.slice(URI_PREFIX.length);
      if (!fs.existsSync(path.join(artifactDir, fileName))) fail(`${where}: artifact ${fileName} was not produced`);
      named.push(fileName);
    }
    if (JSON.stringify(named.sort()) !== JSON.stringify(expected)) fail(`${where}: artifacts are [${named.join(', ')}], expected [${expected.join(', ')}]`);
  }
}

/**
 * @param {ComponentBuild} c @param {string} version @param {any} project
 */
async function buildComponent(c, version, project) {
  const started = Date.now();
  const artifactDir = path.join(OUT, 'artifacts', c.name, version);
  fs.mkdirSync(artifactDir, { recursive: true });
  const entry = path.join(ROOT, 'components', c.dir, 'main.ts');
  if (!fs.existsSync(entry)) fail(`${c.name}: missing entry ${path.relative(ROOT, entry)}`);
  try {
    await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      plugins: [nativeBindingPlugin, onnxRuntimePlugin, hmiWebPlugin],
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile: path.join(artifactDir, 'main.js'),
      logLevel: 'silent',
    });
  } catch (err) {
    fail(`${c.name}: bundling ${path.relative(ROOT, entry)} failed:\n  ${describeEsbuildError(err)}`);
  }
  for (const n of Object.values(c.natives).flat()) {
    const sources = 'zip' in n ? n.zip.map((z) => z.from) : [n.from];
    for (const f of sources) if (!fs.existsSync(f)) fail(`${c.name}: native file ${f} not found`);
    if ('zip' in n) await writeZip(path.join(artifactDir, n.to), n.zip);
    else fs.copyFileSync(n.from, path.join(artifactDir, n.to));
  }

  const recipe = readRecipe(c.name, version);
  if (ARM64) checkSameLifecycle(recipe, c.name);
  // Not built for linux-arm64: the recipe does not claim aarch64 (Greengrass then refuses the
  // deployment on an aarch64 core instead of starting a component without its files).
  else recipe.Manifests = recipe.Manifests.filter((/** @type {any} */ m) => m?.Platform?.architecture !== 'aarch64');
  const conf = (recipe.ComponentConfiguration ??= {});
  const defaults = (conf.DefaultConfiguration ??= {});
  if ('accessControl' in defaults) fail(`recipes/${c.name}.yaml: remove DefaultConfiguration.accessControl; the build writes it from the contract`);
  const spec = project.CONFIG_SPECS[c.name];
  if (!spec) fail(`${c.name}: no configuration spec in components/registry.ts`);
  // At run time unknown keys are only warned about (deployments keep old keys); in our own recipe
  // one is a typo, so it fails the build.
  const allowed = Object.keys(spec.schema.properties ?? {});
  const unknownKeys = Object.keys(defaults).filter((k) => !allowed.includes(k));
  if (unknownKeys.length) fail(`recipes/${c.name}.yaml: DefaultConfiguration has unknown key(s) ${unknownKeys.join(', ')} (allowed: ${allowed.join(', ')})`);
  try {
    project.validateConfig(spec, defaults);
  } catch (err) {
    fail(`recipes/${c.name}.yaml: DefaultConfiguration is invalid: ${err instanceof Error ? err.message : String(err)}`);
  }
  defaults.accessControl = project.accessControlFor(c.name);
  checkArtifacts(recipe, c, artifactDir);
  writeRecipe(path.join(OUT, 'recipes', `${c.name}-${version}.yaml`), recipe, `recipes/${c.name}.yaml`);
  return Date.now() - started;
}

/**
 * An artifacts-only component: its files copied as they are, its recipe checked (no lifecycle, the
 * files and nothing else on every manifest) and written under the version its files carry.
 * @param {{ name: string, from: string, files: string[], dependent: string }} c @param {any} project @returns {string} the version
 */
function buildArtifactComponent(c, project) {
  const versions = new Set();
  for (const f of c.files) {
    const file = path.join(c.from, f);
    if (!fs.existsSync(file)) fail(`${c.name}: ${path.relative(ROOT, file)} not found (the training pipeline writes it: docs/ml-models.md)`);
    let meta;
    try {
      meta = project.readOnnxMetadata(fs.readFileSync(file));
    } catch (err) {
      fail(`${c.name}: ${path.relative(ROOT, file)} is not a readable ONNX model: ${err instanceof Error ? err.message : String(err)}`);
    }
    const v = meta.get('version');
    if (typeof v !== 'string' || !/^\d+\.\d+\.\d+$/.test(v)) fail(`${c.name}: ${path.relative(ROOT, file)} has no semantic version in its metadata (found ${JSON.stringify(v ?? null)})`);
    versions.add(v);
  }
  if (versions.size !== 1) fail(`${c.name}: the model files carry different versions [${[...versions].join(', ')}]; a models version ships one set`);
  const version = [...versions][0];
  const artifactDir = path.join(OUT, 'artifacts', c.name, version);
  fs.mkdirSync(artifactDir, { recursive: true });
  for (const f of c.files) fs.copyFileSync(path.join(c.from, f), path.join(artifactDir, f));
  const recipe = readRecipe(c.name, version);
  if (recipe.Lifecycle || recipe.Manifests.some((/** @type {any} */ m) => m.Lifecycle)) fail(`recipes/${c.name}.yaml: an artifacts-only component has no lifecycle`);
  if (recipe.ComponentConfiguration) fail(`recipes/${c.name}.yaml: an artifacts-only component has no configuration`);
  for (const [i, m] of recipe.Manifests.entries()) {
    const named = (Array.isArray(m.Artifacts) ? m.Artifacts : []).map((/** @type {any} */ a) => String(a?.URI ?? '')).map((/** @type {string} */ u) => {
      if (!u.startsWith(URI_PREFIX)) fail(`recipes/${c.name}.yaml Manifests[${i}]: artifact URI ${u} must start with ${URI_PREFIX}`);
      return u.slice(URI_PREFIX.length);
    });
    if (JSON.stringify(named.sort()) !== JSON.stringify([...c.files].sort())) fail(`recipes/${c.name}.yaml Manifests[${i}]: artifacts are [${named.join(', ')}], expected [${c.files.join(', ')}]`);
  }
  // The dependent must accept this version: a range over its major version.
  const dep = readRecipe(c.dependent, readJson(path.join(ROOT, 'package.json')).version).ComponentDependencies?.[c.name];
  const major = Number(version.split('.')[0]);
  const want = `>=${major}.0.0 <${major + 1}.0.0`;
  if (!dep || dep.VersionRequirement !== want || (dep.DependencyType ?? 'HARD') !== 'HARD') fail(`recipes/${c.dependent}.yaml: needs a HARD dependency on ${c.name} with VersionRequirement '${want}' (the models built are ${version})`);
  writeRecipe(path.join(OUT, 'recipes', `${c.name}-${version}.yaml`), recipe, `recipes/${c.name}.yaml`);
  return version;
}

/** @param {string} version @param {string[]} implemented @returns {any} */
function buildSite(version, implemented) {
  const recipe = readRecipe(SITE, version);
  const deps = recipe.ComponentDependencies ?? {};
  const names = Object.keys(deps).sort();
  if (JSON.stringify(names) !== JSON.stringify([...implemented].sort())) {
    fail(`recipes/${SITE}.yaml: ComponentDependencies are [${names.join(', ')}] but the implemented components are [${implemented.join(', ')}]`);
  }
  for (const [name, d] of Object.entries(deps)) {
    if (d?.VersionRequirement !== version) fail(`recipes/${SITE}.yaml: ${name} VersionRequirement must be '{COMPONENT_VERSION}'`);
    if ((d?.DependencyType ?? 'HARD') !== 'HARD') fail(`recipes/${SITE}.yaml: ${name} must be a HARD dependency`);
  }
  if (recipe.Manifests.some((/** @type {any} */ m) => m.Lifecycle || m.Artifacts) || recipe.Lifecycle) fail(`recipes/${SITE}.yaml: the meta component has no lifecycle and no artifacts`);
  fs.mkdirSync(path.join(OUT, 'artifacts', SITE, version), { recursive: true });
  writeRecipe(path.join(OUT, 'recipes', `${SITE}-${version}.yaml`), recipe, `recipes/${SITE}.yaml`);
  return recipe;
}

async function buildTools() {
  const built = [];
  for (const t of TOOLS) {
    const entry = path.join(ROOT, t.entry);
    if (!fs.existsSync(entry)) continue;
    const outfile = path.join(ROOT, t.out);
    try {
      await esbuild.build({
        entryPoints: [entry],
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        packages: 'external',
        outfile,
        logLevel: 'silent',
        ...(t.executable ? { banner: { js: '#!/usr/bin/env node' } } : {}),
      });
    } catch (err) {
      fail(`bundling ${t.entry} failed:\n  ${describeEsbuildError(err)}`);
    }
    if (t.executable) fs.chmodSync(outfile, 0o755);
    built.push(t.out);
  }
  return built;
}

async function main() {
  const t0 = Date.now();
  const args = process.argv.slice(2);
  let gdk = false;
  let tools = true;
  let arch = 'x64';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--gdk') gdk = true;
    else if (a === '--no-tools') tools = false;
    else if (a === '--out' && args[i + 1]) OUT = path.resolve(String(args[++i]));
    else if (a === '--arch' && args[i + 1]) arch = String(args[++i]);
    else fail(`unknown argument ${JSON.stringify(a)} (usage: node scripts/build.js [--arch x64|all] [--gdk] [--out DIR] [--no-tools])`);
  }
  if (arch !== 'x64' && arch !== 'all') fail(`--arch must be x64 or all (got ${JSON.stringify(arch)})`);
  /** Why linux-arm64 was not built, if it was not. */
  let skipped;
  if (arch === 'x64') skipped = 'linux-arm64 not built (--arch x64, the default; `npm run build -- --arch all` builds it)';
  else {
    try {
      ARM64 = arm64.ensureArm64Tree((m) => process.stderr.write(`build: ${m}\n`));
    } catch (err) {
      if (!(err instanceof arm64.Arm64Unavailable)) throw err;
      skipped = `linux-arm64 SKIPPED: ${err.message}`;
      process.stderr.write(`build: ${skipped}\n`);
    }
  }

  const version = readJson(path.join(ROOT, 'package.json')).version;
  if (typeof version !== 'string' || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) fail(`package.json version ${JSON.stringify(version)} is not a semver`);
  const gdkConfig = readJson(path.join(ROOT, 'gdk-config.json'));
  const gdkRoot = Object.keys(gdkConfig.component ?? {});
  if (gdkRoot.length !== 1 || gdkRoot[0] !== SITE) fail(`gdk-config.json must name exactly one component, ${SITE} (found ${gdkRoot.join(', ') || 'none'})`);
  if (gdkConfig.component[SITE].version !== version) fail(`gdk-config.json version ${gdkConfig.component[SITE].version} differs from package.json version ${version}`);

  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(path.join(OUT, 'recipes'), { recursive: true });

  const project = await loadProjectModules();
  const table = COMPONENTS();
  const implemented = project.IMPLEMENTED_COMPONENTS.map((/** @type {{name: string}} */ c) => c.name);
  const tableNames = table.map((c) => c.name);
  const missing = implemented.filter((/** @type {string} */ n) => !tableNames.includes(n));
  const extra = tableNames.filter((n) => !implemented.includes(n));
  if (missing.length || extra.length) {
    fail(`scripts/build.js component table and the contract disagree: not built [${missing.join(', ')}], built but not implemented [${extra.join(', ')}]`);
  }

  const timings = await Promise.all(table.map((c) => buildComponent(c, version, project)));
  const site = buildSite(version, implemented);
  const artifactsOnly = ARTIFACT_COMPONENTS().map((c) => ({ name: c.name, version: buildArtifactComponent(c, project) }));
  if (gdk) writeRecipe(path.join(OUT, 'recipes', 'recipe.yaml'), site, `recipes/${SITE}.yaml`);
  const toolsBuilt = tools ? await buildTools() : [];

  const lines = table.map((c, i) => `  ${c.name}@${version} [${Object.keys(c.natives).join(', ')}] (${timings[i]} ms)`);
  if (skipped) lines.push(`  ${skipped}: every recipe has its linux/amd64 manifest only`);
  process.stdout.write(
    [`built ${table.length + 1 + artifactsOnly.length} components into ${path.relative(ROOT, OUT)}/ in ${Date.now() - t0} ms:`, ...lines, `  ${SITE}@${version} (meta)`, ...artifactsOnly.map((a) => `  ${a.name}@${a.version} (artifacts only)`), ...(gdk ? ['  recipes/recipe.yaml (gdk root)'] : []), ...toolsBuilt.map((t) => `  ${t}`)].join('\n') + '\n',
  );
}

main().catch((err) => {
  process.stderr.write(`build failed: ${err instanceof BuildError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
