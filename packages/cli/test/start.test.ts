import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CAP61, run } from './run.js';

// The built command (turbo builds the package before its tests), run as a user runs it.
const BIN = fileURLToPath(new URL('../bin/klpsim.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'klpsim-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/*
 * What a command loads: a module hook (it runs on node's loader thread)
 * appends every ES module URL to a file, and at exit the process adds the
 * CommonJS modules it required (pino is one).
 */
const HOOKS = `import { appendFileSync } from 'node:fs';
let out;
export function initialize(file) { out = file; }
export async function load(url, context, next) {
  appendFileSync(out, url + '\\n');
  return next(url, context);
}`;
const PRELOAD = `import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
const out = process.env.KLPSIM_TEST_LOADED;
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), { data: out });
process.on('exit', () => {
  const cjs = Object.keys(createRequire(import.meta.url).cache);
  appendFileSync(out, cjs.map((f) => 'file://' + f + '\\n').join(''));
});`;
const preload = join(dir, 'preload.mjs');
writeFileSync(preload, PRELOAD);

/** The files (not node: built-ins) the command loaded, and its exit code. */
function loadedBy(...args: string[]): { code: number | null; files: string[] } {
  const out = join(dir, `loaded-${args.join('-').replace(/\W/g, '')}.txt`);
  writeFileSync(out, '');
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(preload).href, BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, KLPSIM_TEST_LOADED: out },
  });
  const urls = readFileSync(out, 'utf8').split('\n');
  const files = urls.filter((u) => u.startsWith('file://')).map((u) => fileURLToPath(u));
  return { code: r.status, files: [...new Set(files)].filter((f) => f !== preload) };
}

describe('start-up: --version and --help load nothing they do not print', () => {
  it.each([['--version'], ['--help'], ['-h'], ['-V']])('klpsim %s', (flag) => {
    const { code, files } = loadedBy(flag);
    expect(code).toBe(0);
    // The bin and the bundle's entry, and whatever small shared pieces it imports.
    expect(files.length).toBeGreaterThan(1);
    for (const f of files)
      expect(f).toMatch(/packages\/cli\/(bin\/klpsim\.js|dist\/klpsim[^/]*\.js)$/);
    // No command's module, no validator, no logger library: their code is in no loaded file.
    const code_ = files.map((f) => readFileSync(f, 'utf8')).join('\n');
    for (const absent of ['$ZodType', 'arch_stack_walk_reliable', 'klp_try_complete_transition'])
      expect(code_).not.toContain(absent);
    expect(files.some((f) => f.includes('pino'))).toBe(false);
  });

  it('a command loads its own module and the simulator, and pino only to write a message', () => {
    const quiet = loadedBy('walk', CAP61, '--summary');
    expect(quiet.code).toBe(0);
    const walkCode = quiet.files.map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(walkCode).toContain('$ZodType');
    expect(walkCode).toContain('arch_stack_walk_reliable');
    expect(quiet.files.some((f) => f.includes('/pino/'))).toBe(false);
    const logged = loadedBy('walk', CAP61, '--summary', '--log-level', 'debug');
    expect(logged.code).toBe(0);
    expect(logged.files.some((f) => f.includes('/pino/'))).toBe(true);
  });
});

// Figures are never asserted (docs/performance.md); the document's shape is.
describe('bench start', () => {
  it('times node and the three commands, each min <= median <= max', async () => {
    const r = await run('bench', 'start', '--runs', '1', '--json');
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out) as {
      runs: number;
      figures: { command: string; minMs: number; medianMs: number; maxMs: number }[];
    };
    expect(doc.runs).toBe(1);
    expect(doc.figures.map((f) => f.command)).toEqual([
      'node -e 0',
      'klpsim --version',
      'klpsim --help',
      expect.stringMatching(/^klpsim walk .*linux-6\.1-arm64-plain\/capture\.json$/),
    ]);
    for (const f of doc.figures) {
      expect(f.minMs).toBeGreaterThan(0);
      expect(f.minMs).toBeLessThanOrEqual(f.medianMs);
      expect(f.medianMs).toBeLessThanOrEqual(f.maxMs);
    }
  });

  it('refuses a run count out of bounds and a capture that is not there, before timing anything', async () => {
    for (const n of ['0', '1001', '1e3']) {
      const r = await run('bench', 'start', '--runs', n);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^klpsim bench start: --runs ".*": expected an integer from 1 to 1000/);
    }
    const missing = await run('bench', 'start', join(dir, 'none.json'));
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/none\.json: no such capture/);
  });

  it('says which command failed and why when a measured run fails', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"format": "arm64-stack-capture/v1"}');
    const r = await run('bench', 'start', bad, '--runs', '1');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /`klpsim walk .*bad\.json` failed \(exit 2\): klpsim: .*bad\.json: kernel: /,
    );
  });
});
