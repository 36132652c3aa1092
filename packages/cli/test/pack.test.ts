import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/*
 * The packages as a user gets them: `pnpm pack` (which rewrites workspace:
 * versions and applies publishConfig), the tarballs installed with npm into
 * an empty project outside the monorepo, the README's library example run
 * there as the README says (example.mjs, node example.mjs), and the packed
 * command run with npx.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['arm64', 'kernel', 'frames', 'unwind', 'livepatch', 'vectors', 'cli'];
const packs = mkdtempSync(join(tmpdir(), 'klpsim-packs-'));
const project = mkdtempSync(join(tmpdir(), 'klpsim-user-'));

function sh(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The ```js block of a Markdown section. */
function jsBlock(md: string, heading: string): string {
  const at = md.indexOf(heading);
  const m = /```js\n([\s\S]*?)```/.exec(md.slice(at));
  if (at < 0 || m === null) throw new Error(`no js example under "${heading}"`);
  return m[1]!;
}

const tarball = (p: string) => join(packs, `klpsim-${p}-0.1.0.tgz`);

beforeAll(() => {
  for (const p of PACKAGES) {
    const r = sh(
      'npx',
      ['--yes', 'pnpm@12.21.0', 'pack', '--pack-destination', packs],
      join(ROOT, 'packages', p),
    );
    if (r.code !== 0) throw new Error(`pnpm pack ${p}: ${r.err}`);
  }
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'user', private: true, type: 'module' }),
  );
  const r = sh(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', ...PACKAGES.map(tarball)],
    project,
  );
  if (r.code !== 0) throw new Error(`npm install: ${r.err}`);
}, 300_000);

afterAll(() => {
  rmSync(packs, { recursive: true, force: true });
  rmSync(project, { recursive: true, force: true });
});

describe('the packed packages', () => {
  it('ship what they need and nothing else', () => {
    expect(readdirSync(packs).sort()).toEqual(PACKAGES.map((p) => `klpsim-${p}-0.1.0.tgz`).sort());
    for (const p of PACKAGES) {
      const files = sh('tar', ['tzf', tarball(p)], packs)
        .out.split('\n')
        .filter((f) => f !== '');
      expect(files, p).toContain('package/README.md');
      expect(files, p).toContain('package/dist/index.js');
      expect(files, p).toContain('package/dist/index.d.ts');
      for (const f of files) {
        expect(f, p).toMatch(
          /^package\/(README\.md|package\.json|LICENSE|dist\/.*\.(c?js|d\.ts|wasm)|bin\/(klpsim\.js|load-bundle\.js|package\.json))$/,
        );
        // Nor the code cache of the bundle: V8's for the node that built it (bin/load-bundle.js).
        expect(f, p).not.toMatch(/tsbuildinfo|\.map$|\/src\/|\.test\.|\.cache$/);
      }
      const manifest = JSON.parse(
        sh('tar', ['xzf', tarball(p), '-O', 'package/package.json'], packs).out,
      );
      expect(manifest.private, p).toBeUndefined();
      expect(JSON.stringify(manifest.exports), p).not.toMatch(/src|@klpsim\/source/);
      for (const [dep, v] of Object.entries(manifest.dependencies ?? {}))
        expect(v, `${p} -> ${dep}`).not.toMatch(/workspace:/);
    }
  });

  it("run the README's library example as written, outside the monorepo", () => {
    const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(md).toContain('save this as `example.mjs`');
    writeFileSync(join(project, 'example.mjs'), jsBlock(md, '## As a library'));
    const r = sh('node', ['example.mjs'], project);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // The example's two chains: six frames walked to ret_from_fork, then the loop refused.
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^\d+ 6 reliable$/);
    expect(lines[1]).toMatch(/^__switch_to\+\S+ \(T\) <- __schedule\+.* <- ret_from_fork\+\S+$/);
    expect(lines[2]).toMatch(/^\d+ -22 unreliable: /);
  });

  it("run each package README's example", () => {
    for (const p of PACKAGES.filter((x) => x !== 'cli')) {
      const md = readFileSync(join(ROOT, 'packages', p, 'README.md'), 'utf8');
      writeFileSync(join(project, `${p}.mjs`), jsBlock(md, `# @klpsim/${p}`));
      const r = sh('node', [`${p}.mjs`], project);
      expect(r.code, `${p}: ${r.err}`).toBe(0);
      expect(r.out.length, p).toBeGreaterThan(0);
    }
  });

  it('npx klpsim --version from the packed cli', () => {
    const r = sh('npx', ['--no-install', 'klpsim', '--version'], project);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^klpsim 0\.1\.0\n/);
    // The real captures ship with the repository, not with the package.
    expect(r.out).toContain('bundled captures: none in this installation');
    const bad = sh('npx', ['--no-install', 'klpsim', 'walk', '--size', '1e20', 'x.json'], project);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^klpsim walk: --size "1e20"/);
  });
});
