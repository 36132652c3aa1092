import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';

/*
 * docs/library.md's examples, taken from the Markdown (not copied) and run
 * from the repository root, where their relative paths point.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OUT = fileURLToPath(new URL('../.docs-examples/', import.meta.url));
const md = readFileSync(join(ROOT, 'docs/library.md'), 'utf8');
const blocks = [...md.matchAll(/^## (.+)\n[\s\S]*?^```ts\n([\s\S]*?)^```/gm)].map((m) => ({
  title: m[1]!,
  code: m[2]!,
}));

mkdirSync(OUT, { recursive: true });
for (const [i, b] of blocks.entries()) writeFileSync(join(OUT, `example-${i}.ts`), b.code);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

describe('docs/library.md examples run as written', () => {
  it('has the four examples', () => {
    expect(blocks.map((b) => b.title)).toEqual([
      'Building a task',
      'Walking it',
      'Predicting a patch on a real system',
      'Running a transition',
    ]);
  });

  it("type-check against the packages' declarations, as the tests do", () => {
    writeFileSync(
      join(OUT, 'tsconfig.json'),
      JSON.stringify({
        extends: '../../../tsconfig.base.json',
        compilerOptions: {
          noEmit: true,
          composite: false,
          declaration: false,
          declarationMap: false,
          sourceMap: false,
          incremental: false,
          rootDir: '.',
        },
        include: ['*.ts'],
      }),
    );
    const tsc = fileURLToPath(new URL('../../../node_modules/.bin/tsc', import.meta.url));
    const r = spawnSync(tsc, ['-p', join(OUT, 'tsconfig.json')], { encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  blocks.forEach((b, i) => {
    it(b.title, async () => {
      const file = join(OUT, `example-${i}.ts`);
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      const cwd = process.cwd();
      process.chdir(ROOT);
      try {
        await import(pathToFileURL(file).href);
        expect(log).toHaveBeenCalled();
      } finally {
        process.chdir(cwd);
        log.mockRestore();
      }
    });
  });
});
