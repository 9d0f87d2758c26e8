/**
 * Asset and point name globs in LocalControl's configuration (`INV-*`, `string*.status`): `*` any
 * run of characters (dots included), `?` one character, everything else literal. The same rules as
 * the Processor's alarm rules, so a site writes its names one way in both configurations.
 */
export type NameMatcher = (name: string) => boolean;

export function compileGlobs(globs: readonly string[] | undefined): NameMatcher {
  if (!globs || globs.length === 0) return () => true;
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  for (const g of globs) {
    if (!/[*?]/.test(g)) exact.add(g);
    else patterns.push(new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`));
  }
  if (patterns.length === 0) return (name) => exact.has(name);
  return (name) => exact.has(name) || patterns.some((p) => p.test(name));
}
