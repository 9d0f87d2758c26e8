/**
 * Argument parsing shared by the CLI's commands (node:util parseArgs, strict), driven by the
 * command specs in commands.ts: the same definition parses a command's options and writes its
 * `--help`, so help cannot leave an option out.
 */
import { parseArgs } from 'node:util';

/** A mistake in how a command was called: main prints one line and a pointer to the command's --help. */
export class CliUsageError extends Error {}

/** `--help` or `-h` was given: main prints the text on stdout and exits 0. */
export class CliHelp extends Error {
  constructor(readonly text: string) {
    super('help');
  }
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in help, e.g. DIR. */
  value?: string;
  help: string;
}

export interface CommandSpec {
  /** `component list`, `query`, `simulator` ... */
  path: string;
  /** Positional part of the usage line, e.g. `online|offline`. */
  args?: string;
  summary: string;
  /** A paragraph after the summary: where data comes from, what is safe. */
  details?: string;
  options: Record<string, OptionSpec>;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

function optionLabel(name: string, o: OptionSpec): string {
  const long = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  return o.short ? `-${o.short}, ${long}` : long;
}

export function usageLine(spec: CommandSpec): string {
  return `dcmms-edge ${spec.path}${spec.args ? ` ${spec.args}` : ''}${Object.keys(spec.options).length ? ' [options]' : ''}`;
}

/** The command's help, generated from its option definitions. */
export function helpText(spec: CommandSpec): string {
  const rows = Object.entries(spec.options).map(([name, o]) => [optionLabel(name, o), `${o.help}${o.multiple ? ' (may be repeated)' : ''}`] as const);
  rows.push(['-h, --help', 'print this help']);
  const width = Math.max(...rows.map(([l]) => l.length));
  const lines = [`usage: ${usageLine(spec)}`, '', spec.summary];
  if (spec.details) lines.push('', spec.details);
  lines.push('', 'options:', ...rows.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`));
  return `${lines.join('\n')}\n`;
}

function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** node's parseArgs messages, plainly. */
function plain(e: unknown, spec: CommandSpec): string {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  const opt = /'(-{1,2}[\w-]+)/.exec(msg)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `${spec.path}: unknown option ${opt ?? msg}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const name = opt?.replace(/^-+/, '');
      const o = name ? (spec.options[name] ?? Object.values(spec.options).find((x) => x.short === name)) : undefined;
      if (o?.type === 'boolean') return `${spec.path}: ${opt} takes no value`;
      return `${spec.path}: ${opt ?? 'an option'} needs a value${o?.value ? ` (${o.value})` : ''}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `${spec.path}: unexpected argument ${/'([^']+)'/.exec(msg)?.[1] ?? msg}`;
    default:
      return `${spec.path}: ${msg.split('\n')[0]}`;
  }
}

/**
 * Parses a command's arguments with its spec. `--help`/`-h` anywhere before `--` throws CliHelp
 * (so `deployment create --help` works without the options create requires).
 */
export function parseCommand(spec: CommandSpec, args: string[], opts: { positionals?: number } = {}): { values: Values; positionals: string[] } {
  if (wantsHelp(args)) throw new CliHelp(helpText(spec));
  const options = Object.fromEntries(
    Object.entries(spec.options).map(([name, o]) => [name, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]),
  );
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] };
  } catch (e) {
    throw new CliUsageError(plain(e, spec));
  }
  const max = opts.positionals ?? 0;
  if (parsed.positionals.length > max) throw new CliUsageError(`${spec.path}: unexpected argument '${parsed.positionals[max]}'`);
  return parsed;
}

export function requireRoot(values: Record<string, unknown>): string {
  const root = values.root;
  if (typeof root !== 'string' || root.length === 0) throw new CliUsageError('--root DIR is required (the nucleus root folder)');
  return root;
}

/** A reader went away (`dcmms-edge component list | head`): end quietly, as Unix tools do. */
export function quietOnClosedStdout(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
