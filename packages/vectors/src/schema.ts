import { hex64Schema, kernelDescSchema, rawStateSchema } from '@klpsim/kernel';
import { CHECK_NAMES, POLICY_NAMES, REASON_CODES } from '@klpsim/unwind';
import { z } from 'zod';

/**
 * `klpsim-vector/v1`: one reliability case as data. Zod first; the
 * TypeScript types and the published JSON Schema (test-vectors/ and docs/)
 * are derived from it.
 */

export const VECTOR_FORMAT = 'klpsim-vector/v1';

const stackContext = {
  /** `!preemptible()`: the IRQ and overflow stacks are known. */
  nonPreemptible: z.boolean().optional(),
  /** `in_nmi()`: the SDEI stacks are known. */
  inNmi: z.boolean().optional(),
  /** `current_in_efi()`: the EFI runtime stack is known. */
  inEfi: z.boolean().optional(),
};

/** Where the walk starts: a blocked task, `current` from its caller, or `current` from a pt_regs. */
export const fromSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('task') }),
  z.strictObject({ kind: z.literal('caller'), fp: hex64Schema, pc: hex64Schema, ...stackContext }),
  z.strictObject({ kind: z.literal('regs'), regs: hex64Schema, ...stackContext }),
]);

/**
 * Where an expectation comes from:
 * - `kernel`: the real kernel's own result (a capture's `kernelReliable` or
 *   `kernelTraceFull`); only vectors made from real captures use it;
 * - `kernel-source`: worked out by hand from the kernel rule the vector cites;
 * - `generated`: klpsim's own output when the vector was written, labelled so
 *   that a person reviews it (`reviewed`).
 */
export const ORIGINS = ['kernel', 'kernel-source', 'generated'] as const;

export const traceEntrySchema = z.strictObject({
  /** The raw 64-bit value the kernel stores. */
  address: hex64Schema,
  /** `%pS`, when the vector pins it. */
  symbol: z.string().max(512).optional(),
  /** Mainline's marker (T, C, P, or sframe-regs' L for an LR from pt_regs; then F / K), when the vector pins it. */
  source: z
    .string()
    .regex(/^[TCPUL]?F?K?$/)
    .optional(),
});

export const expectationSchema = z.strictObject({
  policy: z.enum(POLICY_NAMES),
  checks: z.array(z.enum(CHECK_NAMES)).max(CHECK_NAMES.length).optional(),
  walk: z.enum(['reliable', 'debug']),
  origin: z.enum(ORIGINS),
  /** A generated expectation a person has checked against the kernel source. */
  reviewed: z.boolean().optional(),
  /** The verdict (null for a debug walk, which has none). */
  reliable: z.boolean().nullable(),
  /** Omitted: not pinned (the kernel itself reports no reason codes). */
  reason: z.enum(REASON_CODES).nullable().optional(),
  trace: z.array(traceEntrySchema).max(4096).optional(),
});

export const walkSchema = z.strictObject({
  /** Index into the machine's tasks. */
  task: z.number().int().min(0).max(99_999),
  /** Default: the recipe's own start for that task, else the blocked task. */
  from: fromSchema.optional(),
  /** Trace buffer entries (default 100 reliable, 512 debug). */
  size: z.number().int().min(1).max(4096).optional(),
  expect: z.array(expectationSchema).min(1).max(64),
});

/** A byte offset into a function, or a CFA / record offset (bounded: a frame is far smaller). */
const byteOffset = z
  .number()
  .int()
  .min(0)
  .max(1 << 24);
const frameOffset = z
  .number()
  .int()
  .min(-(1 << 20))
  .max(1 << 20);

/** One run of instructions with the same frame state: `[start, end)` as byte offsets into the function. */
export const frameStateRowSchema = z
  .strictObject({
    start: byteOffset,
    end: byteOffset,
    /** L: LR live, no record; S: record saved, x29 not at it; F: x29 at the record. */
    state: z.enum(['L', 'S', 'F']),
    /** The CFA (sp at the function's entry) as `base + offset`. */
    cfa: z.strictObject({ base: z.enum(['sp', 'x29']), offset: frameOffset }),
    /** x29 was saved at CFA + record, x30 at CFA + record + 8; null in state L. */
    record: frameOffset.nullable(),
    /** CFA - sp whatever the CFA rule (ORC's sp offset); null where sp moved by an unknown amount. */
    sp: frameOffset.nullable(),
    /** The return address (in x30 or in the record) carries a PAC. */
    lrSigned: z.boolean(),
  })
  .refine((r) => r.start < r.end && r.start % 4 === 0 && r.end % 4 === 0, {
    message: 'expected start < end, both multiples of 4',
    path: ['end'],
  })
  .refine((r) => (r.state === 'L') === (r.record === null), {
    message: 'expected a record in states S and F, none in state L',
    path: ['record'],
  });

/** One function's frame state; a pc in no row of it has none. */
export const frameStateFunctionSchema = z
  .strictObject({
    name: z.string().min(1).max(512),
    start: hex64Schema,
    /** Bytes, a multiple of 4 (its kallsyms bounds). */
    size: byteOffset,
    rows: z.array(frameStateRowSchema).max(1 << 18),
  })
  .refine((f) => f.size % 4 === 0, { message: 'expected a multiple of 4', path: ['size'] })
  .refine(
    (f) => f.rows.every((r, i) => r.end <= f.size && (i === 0 || f.rows[i - 1]!.end <= r.start)),
    { message: 'expected rows in order, not overlapping, inside the function', path: ['rows'] },
  );

/**
 * The frame state the walks of `sframe-regs` and `fp-validate` consult, so
 * that a runner needs no instruction decoder: every function that holds a
 * pc of an expectation's trace (or that pc - 4), or of a built task's true
 * chain. `builder`: the builder's truth by construction; `analysis`:
 * klpsim's analysis of the text (@klpsim/frames).
 */
export const frameStatesSchema = z.strictObject({
  origin: z.enum(['builder', 'analysis']),
  functions: z.array(frameStateFunctionSchema).max(100_000),
});

export const vectorSchema = z
  .strictObject({
    format: z.literal(VECTOR_FORMAT),
    id: z
      .string()
      .max(200)
      .regex(/^[a-z0-9][a-z0-9._/-]*$/, { message: 'expected lowercase letters, digits, . _ / -' }),
    title: z.string().min(1).max(300),
    /** The kernel behaviour it pins and where that comes from. */
    pins: z.strictObject({
      behaviour: z.string().min(1).max(4000),
      /** Kernel file and function, document section or mailing-list thread. */
      source: z.string().min(1).max(1000),
    }),
    tags: z.array(z.string().min(1).max(64)).max(32),
    /** The machine as a builder recipe (@klpsim/kernel buildMachine). */
    recipe: kernelDescSchema.optional(),
    /** The machine as raw state, walkable without klpsim's builder. */
    raw: rawStateSchema.optional(),
    /** The frame state of the functions the walks meet (docs/vectors.md). */
    frameStates: frameStatesSchema.optional(),
    walks: z.array(walkSchema).min(1).max(1024),
  })
  .refine((v) => v.recipe !== undefined || v.raw !== undefined, {
    message: 'a vector needs a recipe, raw state or both',
    path: ['raw'],
  });

export type Vector = z.output<typeof vectorSchema>;
export type VectorInput = z.input<typeof vectorSchema>;
export type VectorWalk = Vector['walks'][number];
export type Expectation = VectorWalk['expect'][number];
export type VectorFrom = z.infer<typeof fromSchema>;
export type FrameStates = z.output<typeof frameStatesSchema>;
export type FrameStateFunction = FrameStates['functions'][number];
export type FrameStateRow = FrameStateFunction['rows'][number];

/** The published JSON Schema of `klpsim-vector/v1`. */
export function vectorJsonSchema(): unknown {
  return z.toJSONSchema(vectorSchema, { io: 'input' });
}
