#!/usr/bin/env node
// The `klpsim` command as one bundle (dist/klpsim.cjs and its dist/klpsim-*.cjs
// chunks), built after tsc from its output, and V8's code cache for it. Node
// then reads a handful of files at start instead of about two hundred, which
// was a third of the start-up time of `klpsim walk`, and V8 compiles none of
// them when their cache is good (docs/performance.md, "Start-up"). Each
// command's module stays a chunk of its own, loaded when the command runs, so
// `--version` and `--help` load only main.
//
// esbuild splits the ES modules into chunks; each chunk is then CommonJS that
// bin/load-bundle.js compiles with vm.Script, the one way Node 20 takes a code
// cache (its ES module loader has none). `import.meta.url` becomes the file
// URL of the chunk, `import()` of a chunk a require of it, still asynchronous.
//
// Everything lies flat in dist/, at the depth of the files directly under
// src/ (so a module that takes a path from import.meta.url must be one of
// those, as bin.ts, bundled.ts and runs.ts are), and these paths still hold:
// ../package.json, ../../../fixtures/captures/, ../dist/runs-worker.js (the
// transition --runs worker, tsc's own output), and ./worker.js, the vectors
// mutation worker beside the chunk that starts it, an ES module bundled on
// its own (a worker thread imports it). capstone-wasm is in the bundle but
// never loaded by a command (nothing in the CLI disassembles); a command that
// does must find its .wasm first.
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, transform } from 'esbuild';

const CLI = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(CLI, 'dist');
const vectorsWorker = join(
  createRequire(import.meta.url)
    .resolve('@klpsim/vectors')
    .replace(/index\.js$/, ''),
  'mutate/worker.js',
);

// Chunk names change with their content: drop the last build's, and its caches.
for (const f of readdirSync(DIST))
  if (/^klpsim(-.*)?\.(c?js|cjs\.cache)$/.test(f) || f === 'worker.js') rmSync(join(DIST, f));

// zod's locales: the error messages of some fifty languages, 300 KB of source (a third of the
// bundle's) that V8 parses at every start of a command that validates. klpsim speaks English,
// zod's default, which zod's schemas import on their own; nothing here reads `z.locales`. The
// namespace (`z.locales`, `z.core.locales`) keeps English only.
const englishOnly = {
  name: 'zod-locales-english-only',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${sep}zod${sep}`)
        ? { path: join(dirname(args.importer), args.path), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(join(dirname(args.path), 'en.js'))};`,
      resolveDir: dirname(args.path),
    }));
  },
};

const common = {
  outdir: DIST,
  bundle: true,
  platform: 'node',
  target: 'node20',
  // Less source for V8 to parse when the cache is rejected; names are kept, so a stack trace of
  // a bug still reads.
  minifyWhitespace: true,
  minifySyntax: true,
  // pino is required at run time, only when a message is logged (log.ts); the browser driver
  // is for the report's test only.
  external: ['pino', 'playwright-core'],
  plugins: [englishOnly],
  logLevel: 'warning',
};

await build({ ...common, entryPoints: { worker: vectorsWorker }, format: 'esm' });

const { outputFiles } = await build({
  ...common,
  entryPoints: { klpsim: join(DIST, 'main.js') },
  chunkNames: 'klpsim-[name]-[hash]',
  splitting: true,
  format: 'esm',
  write: false,
});
for (const out of outputFiles) {
  const cjs = await transform(out.text, {
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    minifyWhitespace: true,
    minifySyntax: true,
    // A parameter of the function bin/load-bundle.js wraps the chunk in.
    define: { 'import.meta.url': '__klpsim_url' },
    // As strict as the ES module it was.
    banner: '"use strict";',
    logLevel: 'warning',
  });
  // vm.Script has no loader for import(): a chunk's, or a built-in's, is a require a tick later.
  const code = cjs.code
    .replace(/\bimport\(("[^"]+")\)/g, 'Promise.resolve().then(()=>require($1))')
    .replace(/require\("\.\/(klpsim[\w-]*)\.js"\)/g, 'require("./$1.cjs")');
  if (/\bimport\(|import\.meta/.test(code))
    throw new Error(`${basename(out.path)}: import() or import.meta left in the CommonJS chunk`);
  writeFileSync(out.path.replace(/\.js$/, '.cjs'), code);
}

// The code cache: the bundle run as a user runs it (--version, --help, a walk of the bundled
// 6.1 capture, in one process), then V8's cache of every chunk it loaded, with the functions
// that run compiled. A fresh node with no flags of the environment's: V8 rejects a cache made
// under other flags. Without the capture (a package without fixtures), the chunks' top levels.
// What the runs say is dropped; the script's own failure is the build's.
const made = spawnSync(process.execPath, [join(CLI, 'scripts/code-cache.mjs')], {
  env: { ...process.env, NODE_OPTIONS: '' },
  encoding: 'utf8',
  stdio: ['ignore', 'ignore', 'pipe'],
});
if (made.status !== 0)
  throw new Error(`scripts/code-cache.mjs failed (exit ${made.status}):\n${made.stderr}`);
