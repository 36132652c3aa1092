import { parseArgs } from 'node:util';
import { CHECK_NAMES } from '@klpsim/unwind';
import { z } from 'zod';
import { asUsageError, choicesText, UsageError } from './usage.js';

// Commands import everything about flags from here; the help text and the usage error live in
// usage.ts so that main can print help without loading a validator.
export { asUsageError, helpText, referenceSection, UsageError, usageLine } from './usage.js';

/**
 * Validated command-line flags, one module for every command. A command is
 * data (`CommandDef`): its flags with their bounds, from which come the
 * parser, `--help` and docs/cli-reference.md, so none of them is written
 * twice. Validation happens before any work, and an error names the flag as
 * the user typed it, the value and what was expected, in one line.
 */

/** How a flag's string is checked and converted; `expected` completes "expected ..." in errors and help. */
export interface ValueDef<T> {
  readonly schema: z.ZodType<T, string>;
  readonly expected: string;
}

export interface FlagDef {
  readonly type: 'boolean' | 'string';
  readonly multiple?: boolean;
  /** Refuse a value given twice (`--pid 1 --pid 1` would walk the task twice). */
  readonly unique?: boolean;
  readonly short?: string;
  /** The value's name in usage lines: N, FILE, P. */
  readonly arg?: string;
  readonly help: string;
  readonly value?: ValueDef<unknown>;
}

export interface CommandDef {
  /** As typed after `klpsim`: `walk`, `bench walk`; '' for the main job. */
  readonly name: string;
  /** The positional arguments in usage lines: `<capture.json>`. */
  readonly args: string;
  readonly positionals: readonly [min: number, max: number];
  readonly summary: string;
  readonly description: string;
  readonly flags: Readonly<Record<string, FlagDef>>;
}

type ValueOf<F extends FlagDef> = F['type'] extends 'boolean'
  ? boolean
  : F['value'] extends ValueDef<infer T>
    ? T
    : string;

/** The parsed flags of a command, typed from its definition. */
export type Flags<D extends CommandDef> = {
  -readonly [K in keyof D['flags']]?: D['flags'][K]['multiple'] extends true
    ? ValueOf<D['flags'][K]>[]
    : ValueOf<D['flags'][K]>;
};

const DIGITS = /^[0-9]+$/;

/** An integer in [min, max], written in decimal digits only (no 1e3, 0x10, -1 or 1.0). */
export function uint(min: number, max: number): ValueDef<number> {
  return {
    schema: z.string().regex(DIGITS).transform(Number).pipe(z.number().int().min(min).max(max)),
    expected: `an integer from ${min} to ${max}`,
  };
}

/** A decimal number in (min, max]: `--seconds 0.5`. */
export function decimal(minExclusive: number, max: number): ValueDef<number> {
  return {
    schema: z
      .string()
      .regex(/^[0-9]+(\.[0-9]+)?$/)
      .transform(Number)
      .pipe(z.number().gt(minExclusive).lte(max)),
    expected: `a number above ${minExclusive} and at most ${max}`,
  };
}

/** One of a fixed set of names. */
export function oneOf<const T extends string>(names: readonly T[]): ValueDef<T> {
  return {
    schema: z.enum(names as unknown as [T, ...T[]]),
    expected: choicesText(names),
  };
}

/** A comma-separated list of values: `--tasks 1000,10000`. */
export function listOf<T>(item: ValueDef<T>, maxItems: number): ValueDef<T[]> {
  return {
    schema: z
      .string()
      .transform((s) => s.split(',').map((x) => x.trim()))
      .pipe(z.array(item.schema).min(1).max(maxItems)),
    expected: `1 to ${maxItems} comma-separated values, each ${item.expected}`,
  };
}

/** `--json`, the same on every command. */
export const JSON_FLAG = { type: 'boolean', help: 'one JSON document on stdout' } as const;

/** `--check C`, repeatable, each check once. */
export const CHECK_FLAG = {
  type: 'string',
  multiple: true,
  unique: true,
  arg: 'C',
  value: oneOf(CHECK_NAMES),
  help: 'an extra reliability check',
} as const;

/**
 * A simulation seed: an unsigned 32-bit integer, as the PRNG uses it
 * (mulberry32 keeps `seed >>> 0`, so 4294967296 would silently be seed 0).
 */
export const SEED: ValueDef<number> = uint(0, 0xffff_ffff);

/** `--text FILE`: the kernel text dump a capture names, for the commands that read a capture. */
export const TEXT_FLAG = {
  type: 'string',
  arg: 'FILE',
  help: 'the kernel text dump (default: the file the capture names, beside it)',
} as const;

/** Checks a `--seed` value; the transition command's parser can call this as it is. */
export function parseSeed(s: string, flag = '--seed', command = 'transition'): number {
  return checkValue(command, flag, SEED, s) as number;
}

function checkValue(command: string, flag: string, def: ValueDef<unknown>, s: string): unknown {
  const r = def.schema.safeParse(s);
  if (r.success) return r.data;
  throw new UsageError(command, `${flag} "${s}": expected ${def.expected}`);
}

/** Parses and validates a command's arguments; throws UsageError naming the flag. */
export function parseCommand<D extends CommandDef>(
  def: D,
  argv: readonly string[],
): { flags: Flags<D>; positionals: string[] } {
  const options: Record<
    string,
    { type: 'boolean' | 'string'; multiple?: boolean; short?: string }
  > = {};
  for (const [name, f] of Object.entries(def.flags)) {
    options[name] = {
      type: f.type,
      ...(f.multiple === true ? { multiple: true } : {}),
      ...(f.short !== undefined ? { short: f.short } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(def, argv),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw asUsageError(def.name, e);
  }
  const [min, max] = def.positionals;
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    const want = min === max ? `${min}` : max === min + 1 ? `${min} or ${max}` : `${min} to ${max}`;
    throw new UsageError(
      def.name,
      `expected ${want} argument${max === 1 ? '' : 's'} (${def.args || 'none'}), got ${n}${n > 0 ? `: ${parsed.positionals.join(' ')}` : ''}`,
    );
  }
  const flags: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(parsed.values)) {
    const f = def.flags[name]!;
    const check = (s: unknown) =>
      f.value === undefined || typeof s !== 'string'
        ? s
        : checkValue(def.name, `--${name}`, f.value, s);
    if (Array.isArray(raw)) {
      if (f.unique === true) {
        const dup = raw.find((s, i) => raw.indexOf(s) !== i);
        if (dup !== undefined)
          throw new UsageError(def.name, `--${name} ${String(dup)} given twice`);
      }
      flags[name] = raw.map(check);
    } else flags[name] = check(raw);
  }
  return { flags: flags as Flags<D>, positionals: parsed.positionals };
}

/**
 * `--tasks -5` as `--tasks=-5`: node's parser takes a value that starts
 * with a dash for another option and says only "ambiguous", where the value
 * check would say what is expected. Also refuses a single-valued option
 * given twice (the parser would keep the last one silently).
 */
function joinNegativeValues(def: CommandDef, argv: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const m = /^--([a-z][a-z0-9-]*)(=.*)?$/.exec(a);
    const f = m === null ? undefined : def.flags[m[1]!];
    if (m !== null && f !== undefined) {
      if (f.type === 'string' && f.multiple !== true && seen.has(m[1]!))
        throw new UsageError(def.name, `--${m[1]} given twice (it takes one value)`);
      seen.add(m[1]!);
    }
    const next = argv[i + 1];
    if (f?.type === 'string' && m![2] === undefined && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}
