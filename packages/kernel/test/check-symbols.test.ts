import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHECKED_SYMBOL_FIELDS,
  captureSchemaChecked,
  checkSymbols,
} from '../src/capture/check-symbols.js';
import { captureSchema, validate } from '../src/index.js';

/*
 * The hand-written symbols checker against the zod schema it replaces: the
 * expected issues are zod's own, for the same input, every time.
 */

const CAP61 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-6.1-arm64-plain/capture.json', import.meta.url),
);
const doc61 = () => JSON.parse(readFileSync(CAP61, 'utf8')) as Record<string, unknown>;
const SYMBOLS = captureSchema.shape.symbols;

/** zod's issues for a symbols value, as plain data. */
function zodIssues(v: unknown): unknown[] {
  const r = SYMBOLS.safeParse(v);
  return r.success ? [] : JSON.parse(JSON.stringify(r.error.issues));
}

function same(v: unknown): void {
  expect(checkSymbols(v)).toEqual(zodIssues(v));
}

class KernelThing {}
// Every kind of value a field could hold; a JSON file can hold the first ten.
const VALUES: readonly unknown[] = [
  'schedule',
  '0xffff800008baedb8',
  '0XFFFF',
  '0x',
  '',
  0,
  1.5,
  true,
  null,
  [],
  {},
  undefined,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  10n,
  new KernelThing(),
  new Map(),
  Object.create(null),
  () => 0,
];

describe('the symbols checker says what the capture schema says', () => {
  it('knows every field of the schema: a field added to a symbol must be added to the checker', () => {
    expect(Object.keys(SYMBOLS.element.shape)).toEqual([...CHECKED_SYMBOL_FIELDS]);
  });

  it('accepts the real 6.1 capture, as zod does', () => {
    const symbols = doc61()['symbols'] as unknown[];
    expect(symbols.length).toBe(44_790);
    expect(checkSymbols(symbols)).toEqual([]);
    expect(zodIssues(symbols)).toEqual([]);
  });

  it('the same issue when symbols is not an array, or an entry is not an object', () => {
    for (const v of VALUES) same(v);
    same([...VALUES]);
  });

  it('the same issues for every field holding every kind of value, or missing', () => {
    const good = { name: 'schedule', address: '0xffff800008baf780', type: 't', module: 'ext4' };
    for (const field of CHECKED_SYMBOL_FIELDS) {
      const { [field]: _gone, ...missing } = good;
      same([good, missing]);
      for (const v of VALUES) same([good, { ...good, [field]: v }]);
    }
  });

  it('the same issues, in the same order, for random mixes of broken entries', () => {
    const value = fc.constantFrom(...VALUES);
    const entry = fc.oneof(
      value,
      fc.record(
        { name: value, address: value, type: value, module: value, extra: value },
        { requiredKeys: [] },
      ),
      fc.record({
        name: fc.string(),
        address: fc.oneof(fc.stringMatching(/^0x[0-9a-fA-F]{0,17}$/), fc.string()),
        type: fc.string({ maxLength: 1 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 12 }), (symbols) => {
        same(symbols);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('validating a capture with the checker gives what the schema alone gives', () => {
  /** validate() through both schemas: the result a user sees (file, field, message, expected). */
  function both(change: (d: Record<string, unknown>) => void) {
    const d = doc61();
    change(d);
    const full = validate(captureSchema, d, 'capture.json');
    const checked = validate(captureSchemaChecked, d, 'capture.json');
    return { full, checked };
  }

  it('the same document out of the real capture', () => {
    const { full, checked } = both(() => {});
    expect(full.ok && checked.ok).toBe(true);
    expect(checked).toEqual(full);
  });

  it('the same first problem and count, with problems before, inside and after the symbols', () => {
    const symbol = (d: Record<string, unknown>, i: number) =>
      (d['symbols'] as Record<string, unknown>[])[i]!;
    const tasks = (d: Record<string, unknown>) => d['tasks'] as Record<string, unknown>[];
    const cases: ((d: Record<string, unknown>) => void)[] = [
      (d) => {
        symbol(d, 7)['address'] = '0xffff80000g';
      },
      (d) => {
        symbol(d, 44_789)['name'] = 7;
        symbol(d, 3)['module'] = null;
      },
      (d) => {
        d['symbols'] = {};
      },
      (d) => {
        delete d['symbols'];
      },
      (d) => {
        (d['kernel'] as Record<string, unknown>)['vaBits'] = 7;
        symbol(d, 0)['type'] = undefined;
      },
      (d) => {
        symbol(d, 12)['address'] = 12;
        tasks(d)[3]!['pid'] = -1;
      },
      (d) => {
        symbol(d, 5)['address'] = '0x1ffffffffffffffff';
        tasks(d)[4]!['pid'] = tasks(d)[2]!['pid'];
      },
      (d) => {
        tasks(d)[4]!['pid'] = tasks(d)[2]!['pid'];
      },
      (d) => {
        d['format'] = 'arm64-stack-capture/v2';
        (d['symbols'] as unknown[]).push(null);
      },
    ];
    for (const change of cases) {
      const { full, checked } = both(change);
      expect(full.ok).toBe(false);
      expect(checked).toEqual(full);
    }
  });
});
