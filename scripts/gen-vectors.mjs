#!/usr/bin/env node
// Writes test-vectors/: the generated corpus (from the recipes in
// packages/vectors/src/corpus/recipes.ts, expectations labelled generated)
// and one raw vector per task of every bundled real capture (the kernel's own
// results as origin "kernel"), plus the JSON Schema. Run after a build:
// `pnpm build && node scripts/gen-vectors.mjs`. Writes nothing else.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatInputError, loadCapture } from '../packages/kernel/dist/index.js';
import {
  captureVectors,
  corpusRecipes,
  frameStateVectors,
  kernelRuleVectors,
  knownUnsoundVectors,
  newVector,
  vectorJsonSchema,
} from '../packages/vectors/dist/index.js';

const ROOT = 'test-vectors';
const write = (file, doc) => {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(doc, null, 1)}\n`);
};
// Everything but the runners is rewritten.
for (const d of readdirSync(ROOT, { withFileTypes: true }))
  if (d.isDirectory() && d.name !== 'runners') rmSync(join(ROOT, d.name), { recursive: true });

let n = 0;
for (const r of corpusRecipes()) {
  const id = `${r.topic}/${r.name}`;
  const v = newVector({ id, ...r.meta }, r.recipe, id);
  if (!v.ok) {
    console.error(`${id}: ${formatInputError(v.error)}`);
    process.exit(1);
  }
  write(join(ROOT, r.topic, `${r.name}.json`), v.value);
  n++;
}
console.log(`wrote ${n} generated vectors`);
for (const [what, made] of [
  ['kernel-rules', kernelRuleVectors()],
  ['known-unsound', knownUnsoundVectors()],
  ['frame-state', frameStateVectors()],
]) {
  if (!made.ok) {
    console.error(formatInputError(made.error));
    process.exit(1);
  }
  for (const v of made.value) write(join(ROOT, `${v.id}.json`), v);
  console.log(`wrote ${made.value.length} ${what} vectors`);
}

for (const [name, file] of [
  ['linux-6.1-arm64-plain', 'fixtures/captures/linux-6.1-arm64-plain/capture.json'],
  ['linux-7.2-arm64-plain', 'fixtures/captures/linux-7.2-arm64-plain/capture.json'],
  ['linux-7.2-arm64-hard', 'fixtures/captures/linux-7.2-arm64-hard/capture.json.gz'],
]) {
  const cap = loadCapture(file);
  if (!cap.ok) {
    console.error(formatInputError(cap.error));
    process.exit(1);
  }
  const vs = captureVectors(cap.value, name);
  for (const v of vs) write(join(ROOT, `${v.id}.json`), v);
  console.log(`wrote ${vs.length} vectors from ${name}`);
}
write(join(ROOT, 'vector.schema.json'), vectorJsonSchema());
write('docs/vector.schema.json', vectorJsonSchema());
