#!/usr/bin/env node
// The bundle of dist/main.js (scripts/bundle.mjs), a few files to load instead of hundreds,
// compiled from V8's code cache the build made (load-bundle.js). CommonJS (bin/package.json):
// node then starts without its ES module loader, which nothing here needs.
const { loadBundle } = require('./load-bundle.js');

const { main, quietOnClosedPipe } = loadBundle();
quietOnClosedPipe(process.stdout);
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
