// Loads the command's bundle (dist/klpsim.cjs and its chunks, scripts/bundle.mjs) with V8's code
// cache, which Node 20 offers only to vm.Script: each chunk is compiled from `<chunk>.cache`, made
// by the build, instead of from its source (docs/performance.md, "Start-up"). A cache is used
// only when its first 20 bytes are the SHA-1 of the chunk as it is now followed by the rest of
// the cache: V8 itself checks no more than the source's length, and in a release build not the
// cache's own bytes. V8 rejects one made by another node or under other V8 flags. A missing,
// stale, damaged or rejected cache costs the compile, never a different result.
//
// CommonJS (bin/package.json), as bin/klpsim.js: node then starts without its ES module loader.
const { createHash } = require('node:crypto');
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');
const { Script } = require('node:vm');

const DIST = join(__dirname, '..', 'dist');
const DIGEST = 20;
// CommonJS's parameters, and the chunk's own URL for what was import.meta.url.
const HEAD = '(function (exports, require, module, __filename, __dirname, __klpsim_url) {';
const nodeRequire = createRequire(join(DIST, 'klpsim.cjs'));

/**
 * @typedef {{ file: string, cache: 'accepted' | 'rejected' | 'stale' | 'none',
 *   script: Script, source: Buffer, module: { exports: Record<string, unknown> } }} Loaded
 */
/** @type {Map<string, Loaded>} */
const loaded = new Map();

/** The cache of `file` (whose bytes are `source`) if it was made from them and is whole. */
function cacheFor(file, source) {
  let bytes;
  try {
    bytes = readFileSync(`${file}.cache`);
  } catch {
    return { cache: 'none', cachedData: undefined };
  }
  const cachedData = bytes.subarray(DIGEST);
  return bytes.length > DIGEST && digestOf(source, cachedData).equals(bytes.subarray(0, DIGEST))
    ? { cache: 'accepted', cachedData }
    : { cache: 'stale', cachedData: undefined };
}

/** What a cache file begins with: the SHA-1 of the chunk's bytes and the cache's. */
function digestOf(source, cachedData) {
  return createHash('sha1').update(source).update(cachedData).digest();
}

/** The exports of dist/`name`, loaded and run at the first call, as require does. */
function load(name) {
  const file = join(DIST, name);
  const known = loaded.get(file);
  if (known !== undefined) return known.module.exports;
  const source = readFileSync(file);
  const { cache, cachedData } = cacheFor(file, source);
  const script = new Script(`${HEAD}${source.toString('utf8')}\n})`, {
    filename: file,
    cachedData,
  });
  const used = cache === 'accepted' && script.cachedDataRejected === true ? 'rejected' : cache;
  const module = { exports: {} };
  loaded.set(file, { file, cache: used, script, source, module });
  const require = (id) => (id.startsWith('./') ? load(id.slice(2)) : nodeRequire(id));
  const url = pathToFileURL(file).href;
  script.runInThisContext().call(undefined, module.exports, require, module, file, DIST, url);
  return module.exports;
}

/** The bundle's entry: `main` and what bin/klpsim.js needs beside it. */
function loadBundle() {
  return load('klpsim.cjs');
}

/** The chunks loaded so far, and what became of each one's cache. */
function loadedChunks() {
  return [...loaded.values()].map(({ file, cache }) => ({ file, cache }));
}

/** Writes the code cache of every chunk loaded so far, with all it has compiled (the build's). */
function writeCodeCache() {
  for (const { file, script, source } of loaded.values()) {
    const cachedData = script.createCachedData();
    writeFileSync(`${file}.cache`, Buffer.concat([digestOf(source, cachedData), cachedData]));
  }
}

module.exports = { loadBundle, loadedChunks, writeCodeCache };
