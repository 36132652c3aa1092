#!/usr/bin/env node
// The `klpsim` command as one bundle (dist/klpsim.js and its dist/klpsim-*.js
// chunks), built after tsc from its output. Node then resolves, reads and
// links a handful of files at start instead of about two hundred, which was
// a third of the start-up time of `klpsim walk` (docs/performance.md,
// "Start-up"). Each command's module stays a chunk of its own, imported when
// the command runs, so `--version` and `--help` load only main.
//
// Everything lies flat in dist/, at the depth of the files directly under
// src/ (so a module that takes a path from import.meta.url must be one of
// those, as bin.ts, bundled.ts and runs.ts are), and these paths still hold:
// ../package.json, ../../../fixtures/captures/, ../dist/runs-worker.js (the
// transition --runs worker, tsc's own output), and ./worker.js, the vectors
// mutation worker beside the chunk that starts it, bundled here as an entry.
// capstone-wasm is in the bundle but never loaded by a command (nothing in
// the CLI disassembles); a command that does must find its .wasm first.
import { readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const CLI = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(CLI, 'dist');
const vectorsWorker = join(
  createRequire(import.meta.url)
    .resolve('@klpsim/vectors')
    .replace(/index\.js$/, ''),
  'mutate/worker.js',
);

// Chunk names change with their content: drop the last build's.
for (const f of readdirSync(DIST))
  if (/^klpsim(-.*)?\.js$/.test(f) || f === 'worker.js') rmSync(join(DIST, f));

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

await build({
  entryPoints: { klpsim: join(DIST, 'main.js'), worker: vectorsWorker },
  outdir: DIST,
  chunkNames: 'klpsim-[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Less source for V8 to parse at every start (about 30 ms of CPU here); names are kept, so a
  // stack trace of a bug still reads.
  minifyWhitespace: true,
  minifySyntax: true,
  // pino is required at run time, only when a message is logged (log.ts); the browser driver
  // is for the report's test only.
  external: ['pino', 'playwright-core'],
  plugins: [englishOnly],
  logLevel: 'warning',
});
