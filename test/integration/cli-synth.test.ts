/**
 * `npm run synth` (cdk/synth.js after the build): the template goes to a file in cdk.out/, the
 * terminal gets where it is, not 1,900 lines of YAML; `--print` prints it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const PROJECT = path.join(__dirname, '..', '..');
const YAML_FILE = path.join(PROJECT, 'cdk.out', 'DcmmsEdge.template.yaml');

function synth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // NAG=0: cdk-nag is not what is tested here, and it doubles the time.
    execFile(process.execPath, [path.join(PROJECT, 'cdk', 'synth.js'), ...args], { cwd: PROJECT, env: { ...process.env, NAG: '0' }, timeout: 180_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(() => {
  if (!fs.existsSync(path.join(PROJECT, 'greengrass-build', 'recipes'))) throw new Error('greengrass-build/ is missing: run `npm run build` (npm test does)');
});

test('writes the YAML template to cdk.out and says where; prints it only with --print', async () => {
  fs.rmSync(YAML_FILE, { force: true });
  const quiet = await synth([]);
  expect(quiet.code).toBe(0);
  expect(quiet.stdout).toBe('');
  expect(quiet.stderr).toMatch(/^synthesizing the CDK app/);
  expect(quiet.stderr).toMatch(/cdk\.out\/DcmmsEdge\.template\.yaml: \d+ lines of YAML, \d+ resources/);
  const yaml = fs.readFileSync(YAML_FILE, 'utf8');
  expect(yaml.split('\n').length).toBeGreaterThan(1000);
  expect(yaml).toMatch(/^Resources:|\nResources:/);

  const loud = await synth(['--print']);
  expect(loud.code).toBe(0);
  expect(loud.stdout).toBe(fs.readFileSync(YAML_FILE, 'utf8'));
}, 400_000);
