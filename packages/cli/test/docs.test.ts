import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/*
 * Every command in README.md and docs/ runs as written, right after the
 * quick start (which installs and builds): the commands are taken from the
 * Markdown itself, not copied here, and every file the docs cite exists.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

// The quick start's own set-up lines: running them here would install into the checkout under test.
const SETUP = new Set([
  'npx --yes pnpm@12.21.0 install && ./klpsim',
  'npx --yes pnpm@12.21.0 install',
  'npx --yes pnpm@12.21.0 install && npx --yes pnpm@12.21.0 test',
]);
// What the docs may ask a user to run: klpsim, the independent Python vector runner, its cross-check.
const RUNNABLE =
  /^(\.\/klpsim|python3 test-vectors\/runners\/python\/run\.py|node scripts\/crosscheck-mutations\.mjs)\b/;
// Commands whose exit code 1 is their answer: a transition that does not complete, a refused
// patch, a mutation run that meets the kernel rules' own holes (docs/vectors.md).
const VERDICT = /^\.\/klpsim (transition|predict|vectors mutate)\b/;
// Minutes of work by design (a million tasks): checked to parse (`--help`), not run.
const LONG = [/^\.\/klpsim bench transition$/, /^\.\/klpsim vectors mutate .*--count 1000000\b/];
// Seconds of measuring by design: run as written (every flag checked, every
// step taken) but measuring briefly: these flags replace the command's own
// (klpsim refuses a one-valued flag given twice).
const BRIEF: readonly [RegExp, string][] = [
  [/^\.\/klpsim bench walk\b/, ' --seconds 0.1 --tasks 100'],
  [/^\.\/klpsim bench start\b/, ' --runs 1'],
];

/** `c` with each `--flag value` of `flags` in place of its own, if it has one. */
function withFlags(c: string, flags: string): string {
  let out = c;
  for (const [, name] of flags.matchAll(/--([a-z-]+) \S+/g))
    out = out.replace(new RegExp(` --${name}(?:=| )\\S+`, 'g'), '');
  return `${out}${flags}`;
}

/** Shell command lines of ```sh blocks, continuations joined, comments dropped. */
function shellCommands(md: string): string[] {
  const out: string[] = [];
  for (const block of md.matchAll(/^```(?:sh|bash)\n([\s\S]*?)^```/gm)) {
    const joined = block[1]!.replace(/\\\n\s*/g, '');
    for (const raw of joined.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (line !== '' && !line.startsWith('#')) out.push(line);
    }
  }
  return out;
}

/** `./klpsim ...` written inline in prose and tables. */
function inlineCommands(md: string): string[] {
  return [...md.matchAll(/`(\.\/klpsim(?: [^`]*)?)`/g)].map((m) => m[1]!);
}

const hasPlaceholder = (cmd: string) => /<|>|\.\.\.|\bARGS\b/.test(cmd);

const commands = new Map<string, string>();
for (const page of PAGES) {
  const md = readFileSync(join(ROOT, page), 'utf8');
  for (const cmd of [...shellCommands(md), ...inlineCommands(md)])
    if (!commands.has(cmd)) commands.set(cmd, page);
}

// Outputs (--html FILE) land in a scratch folder that looks like a checkout.
const work = mkdtempSync(join(tmpdir(), 'klpsim-docs-'));
for (const f of ['klpsim', 'packages', 'fixtures', 'examples', 'docs', 'test-vectors', 'scripts'])
  symlinkSync(join(ROOT, f), join(work, f));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function sh(cmd: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const child = spawn('sh', ['-c', cmd], { cwd: work, env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += String(d);
    });
    child.stderr.on('data', (d) => {
      err += String(d);
    });
    child.on('close', (code) => done({ code, out, err }));
  });
}

describe('every command in README.md and docs/ runs as written', () => {
  const all = [...commands];
  it('finds the commands (the extraction itself works)', () => {
    expect(all.some(([c]) => c === './klpsim')).toBe(true);
    expect(all.some(([c]) => c.startsWith('./klpsim walk fixtures/captures/linux-6.1'))).toBe(true);
  });

  it('only the quick start set-up, ./klpsim and the independent vector runner', () => {
    for (const [cmd, page] of all)
      expect(SETUP.has(cmd) || RUNNABLE.test(cmd), `${page}: ${cmd}`).toBe(true);
  });

  it('each command exits 0, or 1 with a verdict (placeholders and bench transition: their --help; bench walk measures briefly)', async () => {
    const runs = all
      .filter(([c]) => RUNNABLE.test(c))
      .map(([c, page]) => {
        const asHelp = hasPlaceholder(c) || LONG.some((r) => r.test(c));
        const sub = c
          .split(' ')
          .filter((w) => /^[a-z]+$/.test(w))
          .slice(0, 2);
        const brief = BRIEF.find(([r]) => r.test(c))?.[1] ?? '';
        return {
          page,
          written: c,
          cmd: asHelp ? `./klpsim ${sub.join(' ')} --help` : withFlags(c, brief),
        };
      });
    // Two at a time: the machine has two cores.
    for (let i = 0; i < runs.length; i += 2) {
      const batch = runs.slice(i, i + 2);
      const results = await Promise.all(batch.map((r) => sh(r.cmd)));
      results.forEach((res, j) => {
        const r = batch[j]!;
        // Exit 1 is a verdict (docs/cli.md's table), not a failure: a transition that does not complete.
        const ok = res.code === 0 || (res.code === 1 && VERDICT.test(r.written));
        expect(ok, `${r.page}: ${r.written} exited ${res.code}\n${res.err}`).toBe(true);
        expect(res.err, `${r.page}: ${r.written}`).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
        expect(res.out.length, `${r.page}: ${r.written}`).toBeGreaterThan(0);
      });
    }
  }, 600_000);
});

describe('docs/ and README.md cite only files that exist', () => {
  it('every relative link and every cited path', () => {
    const missing: string[] = [];
    for (const page of PAGES) {
      const md = readFileSync(join(ROOT, page), 'utf8');
      const base = dirname(join(ROOT, page));
      for (const m of md.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(resolve(base, target))) missing.push(`${page}: link ${target}`);
      }
      for (const m of md.matchAll(
        /`((?:docs|fixtures|examples|packages|scripts|test-vectors)\/[\w./+-]*)`/g,
      )) {
        if (!existsSync(join(ROOT, m[1]!))) missing.push(`${page}: ${m[1]}`);
      }
      // A bare Markdown file name (SEMANTICS.md) must be a page of docs/ or the root.
      for (const m of md.matchAll(/\b([\w-]+\.md)\b/g)) {
        const name = m[1]!;
        if (
          !existsSync(join(ROOT, 'docs', name)) &&
          !existsSync(join(ROOT, name)) &&
          !md.includes(`/${name}`)
        )
          missing.push(`${page}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('docs/cli-reference.md', () => {
  it('is what the command definitions generate (run scripts/gen-cli-reference.mjs)', async () => {
    const { cliReference } = await import('../src/reference.js');
    expect(readFileSync(join(ROOT, 'docs/cli-reference.md'), 'utf8')).toBe(cliReference());
  });
});
