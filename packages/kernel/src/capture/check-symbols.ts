import { HEX64_PATTERN, isHex64 } from '@klpsim/arm64';
import { z } from 'zod';
import { type CaptureDocument, captureSchema, HEX64_MESSAGE } from './schema.js';

/*
 * The symbols array of a capture, checked by hand. It is most of a capture
 * (44,790 entries on 6.1, 159,476 on 7.2), and zod spent 130-210 ms on it at
 * every start; this loop takes a few. It must say exactly what zod says of
 * the same input, issue for issue (code, path, message, in zod's order), so
 * a user sees the same error either way: check-symbols.test.ts runs both on
 * valid and malformed inputs, and fails when the symbol schema gains a field
 * this file does not know.
 */

/** One problem as zod reports it: the fields `validate` reads, and the rest of zod's issue. */
export type SymbolIssue =
  | {
      readonly expected: 'array' | 'object' | 'string';
      readonly code: 'invalid_type';
      readonly path: (string | number)[];
      readonly message: string;
    }
  | {
      readonly origin: 'string';
      readonly code: 'invalid_format';
      readonly format: 'regex';
      readonly pattern: string;
      readonly path: (string | number)[];
      readonly message: string;
    };

/** The fields of a symbol this checker knows, as the schema lists them (the test compares). */
export const CHECKED_SYMBOL_FIELDS = ['name', 'address', 'type', 'module'] as const;

/** zod's name for the type of a value it did not expect (zod's util.parsedType and en locale). */
function receivedName(v: unknown): string {
  switch (typeof v) {
    case 'number':
      // NaN is "NaN"; the infinities print as themselves.
      return Number.isFinite(v) ? 'number' : String(v);
    case 'object': {
      if (v === null) return 'null';
      if (Array.isArray(v)) return 'array';
      const proto = Object.getPrototypeOf(v) as unknown;
      const ctor = (v as { constructor?: { name?: unknown } }).constructor;
      if (proto !== Object.prototype && 'constructor' in v && ctor) return String(ctor.name);
      return 'object';
    }
    default:
      return typeof v;
  }
}

function typeIssue(
  expected: 'array' | 'object' | 'string',
  v: unknown,
  path: (string | number)[],
): SymbolIssue {
  return {
    expected,
    code: 'invalid_type',
    path,
    message: `Invalid input: expected ${expected}, received ${receivedName(v)}`,
  };
}

const HEX_ISSUE = {
  origin: 'string',
  code: 'invalid_format',
  format: 'regex',
  pattern: String(HEX64_PATTERN),
  message: HEX64_MESSAGE,
} as const;

/** A string field of symbol `i`; `optional` accepts undefined (an absent `module`). */
function checkString(
  v: unknown,
  i: number,
  field: string,
  optional: boolean,
  issues: SymbolIssue[],
): void {
  if (typeof v !== 'string' && !(optional && v === undefined))
    issues.push(typeIssue('string', v, [i, field]));
}

/**
 * The problems of a capture's `symbols` value, in the order zod finds them
 * (element by element, fields in schema order); empty when it is valid.
 */
export function checkSymbols(symbols: unknown): SymbolIssue[] {
  const issues: SymbolIssue[] = [];
  if (!Array.isArray(symbols)) {
    issues.push(typeIssue('array', symbols, []));
    return issues;
  }
  for (let i = 0; i < symbols.length; i++) {
    const s = symbols[i] as unknown;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) {
      issues.push(typeIssue('object', s, [i]));
      continue;
    }
    const sym = s as Record<string, unknown>;
    checkString(sym['name'], i, 'name', false, issues);
    const address = sym['address'];
    if (typeof address !== 'string') issues.push(typeIssue('string', address, [i, 'address']));
    else if (!isHex64(address)) issues.push({ ...HEX_ISSUE, path: [i, 'address'] });
    checkString(sym['type'], i, 'type', false, issues);
    checkString(sym['module'], i, 'module', true, issues);
  }
  return issues;
}

/**
 * The capture schema with its symbols checked by checkSymbols: the same
 * issues in the same order (zod checks an object's fields in order), the
 * symbols passed through as they are instead of copied.
 */
export const captureSchemaChecked = captureSchema.extend({
  symbols: z.custom<CaptureDocument['symbols']>().superRefine((symbols, ctx) => {
    for (const issue of checkSymbols(symbols)) ctx.addIssue(issue);
  }),
});
