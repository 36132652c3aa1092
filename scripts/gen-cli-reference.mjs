#!/usr/bin/env node
// Writes docs/cli-reference.md from the CLI's command definitions (run after
// a build: `npx --yes pnpm@12.21.0 build && node scripts/gen-cli-reference.mjs`).
// A test fails when it is stale.
import { writeFileSync } from 'node:fs';
import { cliReference } from '../packages/cli/dist/reference.js';

writeFileSync('docs/cli-reference.md', cliReference());
console.log('wrote docs/cli-reference.md');
