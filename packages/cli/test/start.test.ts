import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CAP61, run } from './run.js';

// The built command (turbo builds the package before its tests), run as a user runs it.
const BIN = fileURLToPath(new URL('../bin/klpsim.js', import.meta.url));
const LOADER = new URL('../bin/load-bundle.js', import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), 'klpsim-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// V8 takes a code cache only under the flags it was made with: none from the environment.
const env = { ...process.env, NODE_OPTIONS: '' };

/*
 * What a command loads: a module hook (it runs on node's loader thread)
 * appends every ES module URL to a file, and at exit the process adds the
 * CommonJS modules it required (pino is one) and the bundle's chunks that
 * bin/load-bundle.js compiled, each with what became of its code cache.
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
import { loadedChunks } from ${JSON.stringify(LOADER)};
const out = process.env.KLPSIM_TEST_LOADED;
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), { data: out });
process.on('exit', () => {
  const cjs = Object.keys(createRequire(import.meta.url).cache);
  appendFileSync(out, cjs.map((f) => 'file://' + f + '\\n').join(''));
  appendFileSync(out, loadedChunks().map((c) => 'chunk ' + c.cache + ' ' + c.file + '\\n').join(''));
});`;
const preload = join(dir, 'preload.mjs');
writeFileSync(preload, PRELOAD);

/** The files (not node: built-ins) the command loaded, its exit code, and the chunks' caches. */
function loadedBy(...args: string[]): {
  code: number | null;
  files: string[];
  caches: Map<string, string>;
} {
  const out = join(dir, `loaded-${args.join('-').replace(/\W/g, '')}.txt`);
  writeFileSync(out, '');
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(preload).href, BIN, ...args], {
    encoding: 'utf8',
    env: { ...env, KLPSIM_TEST_LOADED: out },
  });
  const lines = readFileSync(out, 'utf8').split('\n');
  const chunks = lines.filter((l) => l.startsWith('chunk ')).map((l) => l.split(' '));
  const files = [
    ...lines.filter((u) => u.startsWith('file://')).map((u) => fileURLToPath(u)),
    ...chunks.map(([, , file]) => file!),
  ];
  return {
    code: r.status,
    files: [...new Set(files)].filter((f) => f !== preload),
    caches: new Map(chunks.map(([, cache, file]) => [file!, cache!])),
  };
}

describe('start-up: --version and --help load nothing they do not print', () => {
  it.each([['--version'], ['--help'], ['-h'], ['-V']])('klpsim %s', (flag) => {
    const { code, files } = loadedBy(flag);
    expect(code).toBe(0);
    // The bin and the bundle's entry, and whatever small shared pieces it imports.
    expect(files.length).toBeGreaterThan(1);
    for (const f of files)
      expect(f).toMatch(/packages\/cli\/(bin\/(klpsim|load-bundle)\.js|dist\/klpsim[^/]*\.cjs)$/);
    // No command's module, no validator, no logger library: their code is in no loaded file.
    const code_ = files.map((f) => readFileSync(f, 'utf8')).join('\n');
    for (const absent of ['$ZodType', 'arch_stack_walk_reliable', 'klp_try_complete_transition'])
      expect(code_).not.toContain(absent);
    expect(files.some((f) => f.includes('pino'))).toBe(false);
  });

  it('a command loads its own module and the simulator, and pino only to write a message', () => {
    const quiet = loadedBy('walk', CAP61, '--summary');
    expect(quiet.code).toBe(0);
    // Every chunk from the code cache the build made.
    expect(quiet.caches.size).toBeGreaterThan(2);
    for (const [file, cache] of quiet.caches)
      expect(`${basename(file)} ${cache}`).toMatch(/ accepted$/);
    const walkCode = quiet.files.map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(walkCode).toContain('$ZodType');
    expect(walkCode).toContain('arch_stack_walk_reliable');
    expect(quiet.files.some((f) => f.includes('/pino/'))).toBe(false);
    const logged = loadedBy('walk', CAP61, '--summary', '--log-level', 'debug');
    expect(logged.code).toBe(0);
    expect(logged.files.some((f) => f.includes('/pino/'))).toBe(true);
  });
});

describe('the code cache: time saved, never a different result', () => {
  // A copy of the bin and the bundle, whose entry's cache is spoilt in each way it can be.
  const copy = join(dir, 'copy');
  const cli = fileURLToPath(new URL('..', import.meta.url));
  mkdirSync(join(copy, 'bin'), { recursive: true });
  mkdirSync(join(copy, 'dist'));
  writeFileSync(join(copy, 'package.json'), '{"type":"module"}');
  for (const f of ['klpsim.js', 'load-bundle.js', 'package.json'])
    copyFileSync(join(cli, 'bin', f), join(copy, 'bin', f));
  for (const f of readdirSync(join(cli, 'dist')))
    if (/^klpsim.*\.cjs(\.cache)?$/.test(f))
      copyFileSync(join(cli, 'dist', f), join(copy, 'dist', f));
  const entry = join(copy, 'dist', 'klpsim.cjs');
  const built = { source: readFileSync(entry), cache: readFileSync(`${entry}.cache`) };
  const SCRIPT = `import { loadBundle, loadedChunks } from ${JSON.stringify(pathToFileURL(join(copy, 'bin', 'load-bundle.js')).href)};
const out = [];
const code = await loadBundle().main(['--help'], (s) => out.push(s));
console.log(JSON.stringify({ code, out: out.join('\\n'), entry: loadedChunks()[0].cache }));`;
  const help = (...flags: string[]) => {
    const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', SCRIPT], {
      encoding: 'utf8',
      env,
    });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { code: number; out: string; entry: string };
  };
  const expected = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8', env }).stdout;

  it.each([
    ['accepted', 'as the build made it', () => {}, []],
    ['rejected', 'under other V8 flags', () => {}, ['--stack-size=800']],
    ['none', 'missing', () => rmSync(`${entry}.cache`), []],
    [
      'stale',
      'made from another source of the same length (V8 would take it)',
      () =>
        writeFileSync(
          entry,
          built.source.toString('utf8').replace('"use strict";', "'use strict';"),
        ),
      [],
    ],
    [
      'stale',
      'damaged (V8 would not notice)',
      () => {
        const damaged = Buffer.from(built.cache);
        damaged[damaged.length >> 1] ^= 0x55;
        writeFileSync(`${entry}.cache`, damaged);
      },
      [],
    ],
  ] as const)('%s: a cache %s', (cache, _how, spoil, flags) => {
    writeFileSync(entry, built.source);
    writeFileSync(`${entry}.cache`, built.cache);
    spoil();
    const r = help(...flags);
    expect(r.entry).toBe(cache);
    expect(r.code).toBe(0);
    expect(`${r.out}\n`).toBe(expected);
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
