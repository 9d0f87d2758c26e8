/** Argument parsing shared by the CLI's commands (node:util parseArgs, strict). */
import { parseArgs, ParseArgsConfig } from 'node:util';

export class CliUsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

export function parse(
  args: string[],
  options: Options,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (e) {
    throw new CliUsageError(e instanceof Error ? e.message : String(e));
  }
}

export function requireRoot(values: Record<string, unknown>): string {
  const root = values.root;
  if (typeof root !== 'string' || root.length === 0) throw new CliUsageError('--root DIR is required (the nucleus root folder)');
  return root;
}
