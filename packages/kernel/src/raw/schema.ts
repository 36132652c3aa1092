import { z } from 'zod';
import { hex64 } from '../capture/schema.js';

/**
 * Raw machine state, in the capture format's terms (`arm64-stack-capture/v1`
 * names), self-contained: memory as base64 regions, text ranges, symbols,
 * SYM_CODE ranges, per-CPU stacks and tasks with their tracer state. Any
 * tool can walk it without klpsim's builder: a test vector carries it.
 */

const MAX_OFFSET = 4096;
const offset = z.number().int().min(0).max(MAX_OFFSET);
const name = z.string().min(1).max(200);

export const rawRangeSchema = z.strictObject({ name, start: hex64, end: hex64 });
const stackRange = z.strictObject({ low: hex64, high: hex64 }).nullable();

export const rawStateSchema = z.strictObject({
  release: z.string().min(1).max(200),
  vaBits: z.number().int().min(36).max(52),
  kernelPacEnabled: z.boolean(),
  threadSize: z
    .number()
    .int()
    .min(4096)
    .max(1 << 20),
  ptRegs: z.strictObject({
    size: z.number().int().min(16).max(MAX_OFFSET),
    stackframeOffset: offset,
    pcOffset: offset,
    regs29Offset: offset,
    /** The meta record (6.13+), or null for a kernel whose stackframe is a plain record. */
    meta: z
      .strictObject({
        typeOffset: z.number().int().min(16).max(64).multipleOf(8),
        size: z.number().int().min(24).max(64),
        typeFinal: z.number().int().min(0).max(0xffffffff),
        typePtRegs: z.number().int().min(0).max(0xffffffff),
      })
      .nullable(),
  }),
  /**
   * Mapped memory: stacks and whatever text the walk or its checks read.
   * A region is `size` zero bytes at an 8-aligned `start` with the non-zero
   * `chunks` written over them (so a mostly empty stack stays small).
   */
  memory: z
    .array(
      z.strictObject({
        name,
        start: hex64,
        size: z
          .number()
          .int()
          .min(8)
          .max(64 << 20)
          .multipleOf(8),
        chunks: z
          .array(
            z.strictObject({
              offset: z
                .number()
                .int()
                .min(0)
                .max(64 << 20),
              base64: z
                .string()
                .max(96 << 20)
                .regex(/^[A-Za-z0-9+/]*={0,2}$/, {
                  message: 'expected base64',
                }),
            }),
          )
          .max(1 << 20),
      }),
    )
    .max(100_000),
  text: z.strictObject({
    core: rawRangeSchema,
    init: rawRangeSchema.nullable(),
    /** Init memory has been freed (a booted system): init text is no longer kernel_text_address. */
    initFreed: z.boolean(),
    sections: z.array(rawRangeSchema).max(256),
    modules: z.array(rawRangeSchema).max(4096),
    generated: z
      .array(
        rawRangeSchema.extend({
          kind: z.enum(['ftrace-trampoline', 'kprobe-insn-slot', 'bpf-jit']),
        }),
      )
      .max(4096),
  }),
  /** `sym_code_functions`. */
  symCode: z.array(rawRangeSchema).max(100_000),
  /** Symbols for `%pS` (all of kallsyms, or those the vector's traces need and their successors). */
  symbols: z
    .array(z.strictObject({ name, address: hex64, module: name.optional() }))
    .max(1_000_000),
  special: z.strictObject({
    returnToHandler: hex64.nullable(),
    kretprobeTrampoline: hex64.nullable(),
    retFromFork: hex64.nullable(),
    switchTo: rawRangeSchema.nullable(),
    schedule: rawRangeSchema.nullable(),
  }),
  cpus: z
    .array(
      z.strictObject({
        irqStack: stackRange,
        overflowStack: stackRange,
        sdeiNormalStack: stackRange,
        sdeiCriticalStack: stackRange,
        /** The EFI runtime stack (`efi_rt_stack_top - THREAD_SIZE` up to it), when the machine has one. */
        efiStack: stackRange.optional(),
      }),
    )
    .min(1)
    .max(4096),
  tasks: z
    .array(
      z.strictObject({
        pid: z.number().int().min(0).max(4194304),
        comm: z.string().max(64),
        kthread: z.boolean(),
        state: z.string().min(1).max(2),
        cpu: z.number().int().min(0).max(4095),
        cpuContext: z.strictObject({ fp: hex64, sp: hex64, pc: hex64 }),
        stack: z.strictObject({ low: hex64, high: hex64 }),
        ptRegs: hex64,
        finalFrame: hex64,
        fgraph: z
          .strictObject({
            layout: z.enum(['array', 'shadow']),
            curr: z
              .number()
              .int()
              .min(-1)
              .max(1 << 20),
            /** Oldest first. */
            entries: z
              .array(
                z.strictObject({
                  pos: z
                    .number()
                    .int()
                    .min(0)
                    .max(1 << 20),
                  ret: hex64,
                  func: hex64,
                  retp: hex64,
                }),
              )
              .max(4096),
          })
          .nullable(),
        /** Newest first, as `task->kretprobe_instances` lists them. */
        kretprobes: z.array(z.strictObject({ retAddr: hex64, fp: hex64 })).max(4096),
      }),
    )
    .min(1)
    .max(100_000),
});

export type RawState = z.infer<typeof rawStateSchema>;
