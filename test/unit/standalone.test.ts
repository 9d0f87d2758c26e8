/**
 * The repository stands alone: no tracked file may point at documents that live outside it (a
 * `../shared` folder beside the checkout, design or convention notes, research notes under
 * `reference/`). A reader of a clone has none of them, and CI must not need them. Specification
 * citations go to docs/specification.md, conventions to docs/conventions.md, Greengrass facts to
 * their public sources by name or to docs/local-runtime.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const SELF = 'test/unit/standalone.test.ts';

/** What a file must not contain, with the reason a reader is given. */
const FORBIDDEN: ReadonlyArray<{ pattern: RegExp; what: string }> = [
  { pattern: /\.\.\/shared/, what: 'a ../shared path (outside the repository)' },
  { pattern: /\/work\/shared/, what: 'a /work/shared path (outside the repository)' },
  { pattern: /DESIGN\.md/, what: 'DESIGN.md (not in the repository: cite README.md or docs/*.md)' },
  { pattern: /CONVENTIONS\.md/, what: 'CONVENTIONS.md (not in the repository: cite docs/conventions.md)' },
  { pattern: /reference\/[A-Za-z0-9_-]+\.md/, what: 'a reference/<name>.md note (not in the repository: cite the public source)' },
  { pattern: /edge-computing-spec/, what: 'edge-computing-spec.md (not in the repository: cite docs/specification.md)' },
  { pattern: /\b[Ii]ssue \d+/, what: 'an issue number (the tracker is not in the repository: say what was meant, or cite our docs)' },
];

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .split('\0')
    .filter((f) => f !== '' && f !== 'package-lock.json' && f !== SELF);
}

/** `file:line: what` for every forbidden reference in `text`. */
function findExternalReferences(file: string, text: string): string[] {
  const hits: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const f of FORBIDDEN) if (f.pattern.test(line)) hits.push(`${file}:${i + 1}: ${f.what}: ${line.trim().slice(0, 160)}`);
  });
  return hits;
}

describe('the repository stands alone', () => {
  test('the check finds each kind of external reference, and nothing in plain text', () => {
    const bad = [
      "const SCHEMAS = path.resolve(ROOT, '..', 'x', '../shared/schemas');",
      'see /work/shared/reference',
      '// DESIGN.md "The contract"',
      '(CONVENTIONS.md "Errors")',
      '(reference/greengrass.md §9)',
      'reference/stream-manager.md',
      'edge-computing-spec.md §3.2',
      '(issue 4 §3)',
    ];
    expect(bad.map((l) => findExternalReferences('x.ts', l).length)).toEqual(bad.map(() => 1));
    expect(findExternalReferences('x.ts', 'dCMMS edge specification §3.2 (docs/specification.md); docs/conventions.md; schemas/README.md')).toEqual([]);
  });

  test('no tracked file refers to documents outside the repository', () => {
    const files = trackedFiles();
    expect(files.length).toBeGreaterThan(100);
    expect(files).toContain('README.md');
    const hits: string[] = [];
    for (const file of files) {
      const abs = path.join(ROOT, file);
      if (!fs.existsSync(abs)) continue; // deleted in the work tree, not yet committed
      hits.push(...findExternalReferences(file, fs.readFileSync(abs, 'utf8')));
    }
    expect(hits).toEqual([]);
  });
});
