/**
 * The CLI's help is generated from the option definitions its commands parse with
 * (scripts/cli/commands.ts), so it cannot leave an option out; usage errors are one line and a hint.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CliHelp, CliUsageError, helpText, parseCommand } from '../../scripts/cli/args';
import { COMMANDS, DEMO, NUCLEUS } from '../../scripts/cli/commands';

const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');
const CLI_DIR = path.join(__dirname, '..', '..', 'scripts', 'cli');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('every option of every command is in its help', () => {
  for (const spec of COMMANDS) {
    const help = helpText(spec);
    for (const [name, o] of Object.entries(spec.options)) {
      expect(`${spec.path}: ${help}`).toContain(`--${name}`);
      if (o.short) expect(help).toContain(`-${o.short}, --${name}`);
    }
  }
  expect(helpText(DEMO)).toContain('--time-scale');
  expect(helpText(NUCLEUS)).toContain('--region');
  expect(helpText(NUCLEUS)).toContain('--spool-bytes');
});

test('every option a command reads is one its spec defines (the code cannot read an undeclared option)', () => {
  const declared = new Set(COMMANDS.flatMap((c) => Object.keys(c.options)));
  for (const file of fs.readdirSync(CLI_DIR).filter((f) => f.endsWith('.ts'))) {
    const src = fs.readFileSync(path.join(CLI_DIR, file), 'utf8');
    // No command parses with its own option table: parseArgs is called in args.ts only.
    if (file !== 'args.ts') expect(`${file}: ${/\bparseArgs\s*\(/.test(src)}`).toBe(`${file}: false`);
    for (const m of src.matchAll(/\bvalues(?:\.([A-Za-z][\w]*)|\[['"]([\w-]+)['"]\])/g)) {
      const name = m[1] ?? m[2]!;
      expect(`${file}: ${name} ${declared.has(name)}`).toBe(`${file}: ${name} true`);
    }
  }
});

test('--help anywhere prints the help and does not require the other options', () => {
  expect(() => parseCommand(DEMO, ['--root', 'x', '--help'])).toThrow(CliHelp);
  expect(() => parseCommand(NUCLEUS, ['-h'])).toThrow(CliHelp);
});

test('an unknown option, a missing value and a stray argument are said plainly', () => {
  expect(() => parseCommand(DEMO, ['--bogus'])).toThrow(new CliUsageError('demo: unknown option --bogus'));
  expect(() => parseCommand(DEMO, ['--time-scale'])).toThrow(new CliUsageError('demo: --time-scale needs a value (N)'));
  expect(() => parseCommand(DEMO, ['extra'])).toThrow(new CliUsageError("demo: unexpected argument 'extra'"));
});

describe('the built CLI', () => {
  beforeAll(() => {
    expect(fs.existsSync(CLI)).toBe(true); // npm run build first (npm test does)
  });

  test('demo --help and nucleus --help list their options', async () => {
    const demo = await run(['demo', '--help']);
    expect(demo.code).toBe(0);
    expect(demo.stdout).toContain('--time-scale N');
    const nucleus = await run(['nucleus', '--help']);
    expect(nucleus.code).toBe(0);
    for (const o of ['--region', '--spool-bytes', '--secrets', '--offline-behaviour']) expect(nucleus.stdout).toContain(o);
    const fault = await run(['simulator', 'fault', '--help']);
    expect(fault.stdout).toContain('--offset-deg');
  });

  test('a usage error is one line and a hint, not the whole help', async () => {
    const r = await run(['query', '--db', 'x.db', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("dcmms-edge: query: unknown option --bogus\nsee 'dcmms-edge query --help'\n");
    expect(r.stdout).toBe('');
    const sub = await run(['component', 'list', '--root']);
    expect(sub.stderr).toBe("dcmms-edge: component list: --root needs a value (DIR)\nsee 'dcmms-edge component list --help'\n");
    const cmd = await run(['frobnicate']);
    expect(cmd.stderr).toBe("dcmms-edge: unknown command 'frobnicate'\nsee 'dcmms-edge --help'\n");
  });
});
