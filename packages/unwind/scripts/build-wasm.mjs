#!/usr/bin/env node
// Compiles the flat walk's WebAssembly core, src/flat/walk-core.wat, with
// wabt (a devDependency: no native toolchain) to dist/flat/walk-core.wasm.
// Part of the package's build; the .wasm is generated, never edited or
// committed.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const src = fileURLToPath(new URL('../src/flat/walk-core.wat', import.meta.url));
const out = fileURLToPath(new URL('../dist/flat/walk-core.wasm', import.meta.url));
const wabt = await wabtInit();
// Threads: the core imports the arena's shared memory, which worker threads walk in place.
const module = wabt.parseWat(src, readFileSync(src, 'utf8'), { threads: true });
// wabt's validator does not take the threads feature; V8 validates the module when it loads it
// (the flat tests load it on every run).
const { buffer } = module.toBinary({});
new WebAssembly.Module(buffer);
mkdirSync(fileURLToPath(new URL('../dist/flat/', import.meta.url)), { recursive: true });
writeFileSync(out, buffer);
module.destroy();
