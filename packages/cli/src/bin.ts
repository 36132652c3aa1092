import { fileURLToPath } from 'node:url';

/**
 * The `klpsim` command of this installation, for what starts it afresh
 * (`bench start`). Kept in a module directly under src/: its path is taken
 * from import.meta.url, which lies at that depth in dist/ and in the bundle.
 */
export const KLPSIM_BIN = fileURLToPath(new URL('../bin/klpsim.js', import.meta.url));
