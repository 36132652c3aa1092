#!/usr/bin/env node
// The bundle of dist/main.js (scripts/bundle.mjs): a few files to load instead of hundreds.
import { main, quietOnClosedPipe } from '../dist/klpsim.js';

quietOnClosedPipe(process.stdout);
process.exitCode = await main(process.argv.slice(2));
