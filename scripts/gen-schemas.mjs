#!/usr/bin/env node
// Writes docs/scenario.schema.json from the zod schema (run after a build:
// `pnpm build && node scripts/gen-schemas.mjs`). A test fails when it is stale.
import { writeFileSync } from 'node:fs';
import { scenarioJsonSchema } from '../packages/livepatch/dist/index.js';

writeFileSync('docs/scenario.schema.json', `${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
console.log('wrote docs/scenario.schema.json');
