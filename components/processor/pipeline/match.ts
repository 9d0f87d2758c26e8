/**
 * Name globs for configuration (`*.W`, `160.module.*.DCV`): `*` matches any run of characters
 * (dots included), `?` one character; everything else is literal. Compiled once per rule.
 */
export type NameMatcher = (name: string) => boolean;

export function compileGlobs(globs: readonly string[] | undefined): NameMatcher {
  if (!globs || globs.length === 0) return () => true;
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  for (const g of globs) {
    if (!/[*?]/.test(g)) {
      exact.add(g);
      continue;
    }
    const body = g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    patterns.push(new RegExp(`^${body}$`));
  }
  if (patterns.length === 0) return (name) => exact.has(name);
  return (name) => exact.has(name) || patterns.some((p) => p.test(name));
}
