// @ts-check
/**
 * `npm run synth`: `cdk synth` without 1,700 lines of YAML on the terminal. The CDK CLI writes the
 * cloud assembly to cdk.out/ either way; this runs it quietly (-q), writes the template as YAML
 * beside the JSON one, and says where. `npm run synth -- --print` prints the YAML as `cdk synth`
 * does; other arguments go to `cdk synth` (`-c dcmms:lock=record`, ...).
 */
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const print = args.includes('--print');
const passed = args.filter((a) => a !== '--print');
const cdk = path.join(root, 'node_modules', '.bin', 'cdk');

// It takes 20-45 s here (cdk-nag, CloudFormation validation): say so before the wait.
process.stderr.write('synthesizing the CDK app (cdk synth: 20-45 s here, more on a busy machine)...\n');
const t0 = Date.now();
// The CDK CLI's own messages go to stderr: with CI set it writes its warnings ("N feature flags
// are not configured") to stdout, and stdout here carries the template (--print) or nothing.
const r = spawnSync(cdk, ['synth', '-q', ...passed], { cwd: root, stdio: ['inherit', process.stderr, 'inherit'] });
if (r.status !== 0) process.exit(r.status ?? 1);

const out = path.join(root, 'cdk.out');
const templates = fs.readdirSync(out).filter((f) => f.endsWith('.template.json'));
for (const t of templates) {
  const json = JSON.parse(fs.readFileSync(path.join(out, t), 'utf8'));
  const yaml = YAML.stringify(json, { lineWidth: 0 });
  const file = path.join(out, t.replace(/\.json$/, '.yaml'));
  fs.writeFileSync(file, yaml);
  if (print) process.stdout.write(yaml);
  const resources = Object.keys(json.Resources ?? {}).length;
  process.stderr.write(`${path.relative(process.cwd(), file)}: ${yaml.split('\n').length - 1} lines of YAML, ${resources} resources (JSON beside it: ${t})\n`);
}
process.stderr.write(`synthesized in ${((Date.now() - t0) / 1000).toFixed(1)} s${print ? '' : '; `npm run synth -- --print` prints the template'}\n`);
