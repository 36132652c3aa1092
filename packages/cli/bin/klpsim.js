#!/usr/bin/env node
import { main, quietOnClosedPipe } from '../dist/main.js';

quietOnClosedPipe(process.stdout);
process.exitCode = await main(process.argv.slice(2));
