/**
 * The repository stands alone: no tracked file may point at documents that live outside it (the
 * shared folder beside the checkout, the design and convention notes kept there, research notes
 * under its reference folder, the specification's source file, the issue tracker). A reader of a
 * clone has none of them, and CI must not need them. Specification citations go to
 * docs/specification.md, conventions to docs/conventions.md, Greengrass facts to their public
 * sources by name or to docs/local-runtime.md.
 *
 * The names are put together from parts below, so that this file holds none of them and is checked
 * like every other.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const SHARED_UP = ['..', 'shared'].join('/');
const SHARED_ABS = ['', 'work', 'shared'].join('/');
const DESIGN = ['DESIGN', 'md'].join('.');
const CONVENTIONS = ['CONVENTIONS', 'md'].join('.');
const SPEC = ['edge', 'computing', 'spec'].join('-');
const ISSUE = ['Issue', 'issue'];

/** What a file must not contain, with the reason a reader is given. */
const FORBIDDEN: ReadonlyArray<{ pattern: RegExp; what: string }> = [
  { pattern: new RegExp(esc(SHARED_UP)), what: `a ${SHARED_UP} path (outside the repository)` },
  { pattern: new RegExp(esc(SHARED_ABS)), what: `a ${SHARED_ABS} path (outside the repository)` },
  { pattern: new RegExp(esc(DESIGN)), what: `${DESIGN} (not in the repository: cite README.md or docs/*.md)` },
  { pattern: new RegExp(esc(CONVENTIONS)), what: `${CONVENTIONS} (not in the repository: cite docs/conventions.md)` },
  { pattern: new RegExp(`${['reference', ''].join('/')}[A-Za-z0-9_-]+\\.md`), what: 'a note of the reference folder (not in the repository: cite the public source)' },
  { pattern: new RegExp(esc(SPEC)), what: `${SPEC}.md (not in the repository: cite docs/specification.md)` },
  { pattern: new RegExp(`\\b(${ISSUE.join('|')}) \\d+`), what: 'an issue number (the tracker is not in the repository: say what was meant, or cite our docs)' },
];

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .split('\0')
    .filter((f) => f !== '' && f !== 'package-lock.json');
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
      `const SCHEMAS = path.resolve(ROOT, '..', 'x', '${SHARED_UP}/schemas');`,
      `see ${SHARED_ABS}/reference`,
      `// ${DESIGN} "The contract"`,
      `(${CONVENTIONS} "Errors")`,
      `(${['reference', 'greengrass.md'].join('/')} §9)`,
      ['reference', 'stream-manager.md'].join('/'),
      `${SPEC}.md §3.2`,
      `(${ISSUE[1]} 4 §3)`,
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
