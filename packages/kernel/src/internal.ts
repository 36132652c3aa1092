/**
 * For klpsim's own packages, not users: building `Result`s. Users only read
 * them (the public index), so these stay out of it.
 */
export { fail, ok } from './errors.js';
