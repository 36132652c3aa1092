/**
 * For klpsim's own packages, not users: building `Result`s. Users only read
 * them (the public index), so these stay out of it. formatInputError is in
 * both: the CLI formats errors from here without loading the whole package.
 */
export { fail, formatInputError, ok } from './errors.js';
