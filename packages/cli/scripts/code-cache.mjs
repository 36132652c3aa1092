#!/usr/bin/env node
// Makes V8's code cache of the bundle (run by bundle.mjs, in a node of its own): runs what a
// user runs first, in this process, with the output dropped, then writes the cache of every
// chunk loaded, with the functions those runs compiled (bin/load-bundle.js). A run that fails
// (a checkout without the capture's text dump) only leaves its functions out of the cache.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadBundle, writeCodeCache } from '../bin/load-bundle.js';

const CAP61 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-6.1-arm64-plain/capture.json', import.meta.url),
);
const { main } = loadBundle();
const quiet = () => {};
const runs = [['--version'], ['--help']];
if (existsSync(CAP61)) runs.push(['walk', CAP61]);
for (const argv of runs) await main(argv, quiet);
writeCodeCache();
