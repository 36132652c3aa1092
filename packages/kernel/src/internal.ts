/**
 * For klpsim's own packages, not users: building `Result`s. Users only read
 * them (the public index), so these stay out of it. formatInputError is in
 * both, and InputFault: the CLI formats and catches errors from here without
 * loading the whole package.
 */
export { fail, formatInputError, InputFault, ok } from './errors.js';
