import { HEX64_PATTERN } from '@klpsim/arm64';
import { z } from 'zod';

/**
 * `arm64-stack-capture/v1` (fixtures/captures/README.md), as zod schemas.
 * Only what klpsim reads is required; unknown fields are kept and ignored,
 * as the format asks of readers.
 */

/** The message of a hex field that is not `0x...` (check-symbols.ts gives it too). */
export const HEX64_MESSAGE = 'expected a "0x..." hex string of at most 16 digits';
export const hex64 = z.string().regex(HEX64_PATTERN, { message: HEX64_MESSAGE });

/**
 * CONFIG_NR_CPUS on arm64 is at most 4096 (arch/arm64/Kconfig: "Maximum
 * number of CPUs (2-4096)"), and nr_cpu_ids never exceeds it: a larger
 * count is a broken file, and building that many CPUs' stacks would take
 * minutes and gigabytes before failing.
 */
export const NR_CPUS_MAX = 4096;
const cpuId = z
  .number()
  .int()
  .nonnegative()
  .max(NR_CPUS_MAX - 1);

/**
 * THREAD_SIZE on arm64 is 1 << THREAD_SHIFT: 16 KiB, doubled or quadrupled
 * under KASAN, at most 64 KiB (arch/arm64/include/asm/memory.h); the IRQ and
 * SDEI stacks are THREAD_SIZE too and the overflow stack 4 KiB. A stack
 * size above 64 KiB is not a kernel's.
 */
export const STACK_SIZE_MAX = 64 * 1024;
const stackSize = z.number().int().positive().max(STACK_SIZE_MAX);
// sizeof(struct pt_regs) is a few hundred bytes (336 on 6.1 and 7.2); offsets lie inside it.
const PT_REGS_MAX = 1024;
const ptRegsOffset = z.number().int().nonnegative().max(PT_REGS_MAX);
// PID_MAX_LIMIT on 64-bit (include/linux/threads.h): every pid is below 4 * 1024 * 1024.
const pid = z
  .number()
  .int()
  .nonnegative()
  .max(4 * 1024 * 1024 - 1);
// ret_stack: 50 entries on 6.1 (FTRACE_RETFUNC_DEPTH), a page of words on 6.8+ (SHADOW_STACK_SIZE).
const RET_STACK_MAX = 4096;
const retStackIndex = z.number().int().min(-1).max(RET_STACK_MAX);
// Trace buffers: far above livepatch's 100 entries, as `klpsim walk --size` allows.
const traceCount = z.number().int().min(-4095).max(65536);
// The kernel's text is tens of MiB; a dump claiming gigabytes is not one.
const TEXT_DUMP_MAX = 1024 * 1024 * 1024;

const range = z.looseObject({ start: hex64.nullable(), end: hex64.nullable() });

const metaLayout = z.looseObject({
  typeOffset: ptRegsOffset,
  recordFpOffset: ptRegsOffset,
  regs29Offset: ptRegsOffset.optional(),
  sizeofFrameRecordMeta: z.number().int().positive().max(PT_REGS_MAX).optional(),
  FRAME_META_TYPE_FINAL: z.number().int().nonnegative().max(0xffff),
  FRAME_META_TYPE_PT_REGS: z.number().int().nonnegative().max(0xffff),
});

const kernel = z.looseObject({
  release: z.string(),
  config: z.record(z.string(), z.string()).optional(),
  configFromModule: z.record(z.string(), z.number()).optional(),
  threadSize: stackSize,
  irqStackSize: stackSize.optional(),
  overflowStackSize: stackSize.optional(),
  vaBits: z.number().int().min(39).max(52),
  kernelPacEnabled: z.boolean(),
  ptRegs: z.looseObject({
    size: z.number().int().positive().max(PT_REGS_MAX),
    stackframeOffset: ptRegsOffset,
    pcOffset: ptRegsOffset,
    meta: metaLayout.optional(),
  }),
  sections: z.record(z.string(), range.nullable()),
  specialAddresses: z.record(z.string(), hex64.nullable()),
  cpus: z
    .looseObject({
      nrCpuIds: z.number().int().positive().max(NR_CPUS_MAX),
      online: z.number().int().nonnegative().max(NR_CPUS_MAX),
    })
    .refine((c) => c.online <= c.nrCpuIds, {
      message: 'more CPUs online than nrCpuIds',
      path: ['online'],
    })
    .optional(),
  irqStacks: z
    .array(z.looseObject({ cpu: cpuId, base: hex64, top: hex64 }))
    .max(NR_CPUS_MAX)
    .nullable()
    .optional(),
  overflowStacks: z
    .array(
      z.looseObject({
        cpu: cpuId,
        base: hex64,
        size: stackSize,
      }),
    )
    .max(NR_CPUS_MAX)
    .nullable()
    .optional(),
  perCpuStacks: z
    .array(
      z.looseObject({
        cpu: cpuId,
        irqStackSize: stackSize,
        overflowStackSize: stackSize,
        sdeiStackSize: stackSize.optional(),
        irqStack: hex64,
        overflowStack: hex64,
        // null where the kernel has no SDEI (CONFIG_ARM_SDE_INTERFACE=n): those stacks are absent.
        sdeiStackNormal: hex64.nullable().optional(),
        sdeiStackCritical: hex64.nullable().optional(),
      }),
    )
    .max(NR_CPUS_MAX)
    .optional(),
  textDump: z.looseObject({
    file: z.string().min(1),
    start: hex64,
    end: hex64,
    size: z.number().int().positive().max(TEXT_DUMP_MAX),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, { message: 'expected 64 lowercase hex digits' }),
  }),
  modules: z
    .array(
      z.looseObject({ name: z.string(), textStart: hex64, textEnd: hex64, textBase64: z.string() }),
    )
    .optional(),
});

const symbol = z.looseObject({
  name: z.string(),
  address: hex64,
  type: z.string(),
  module: z.string().optional(),
});

const traceEntry = z.looseObject({ address: hex64, symbol: z.string() });

const task = z.looseObject({
  pid,
  tgid: pid.optional(),
  comm: z.string(),
  kthread: z.boolean(),
  state: z.string(),
  /** `task->__state` as a number in hex: TASK_FREEZABLE, TASK_WAKEKILL and TASK_NOLOAD are not in the letter. */
  stateRaw: hex64.optional(),
  cpu: cpuId,
  cpuContext: z.looseObject({ fp: hex64, sp: hex64, pc: hex64 }),
  stack: z.looseObject({
    low: hex64,
    high: hex64,
    size: stackSize,
    base64: z.string(),
  }),
  ptRegs: hex64,
  finalFrame: hex64,
  fgraph: z
    .looseObject({
      retStack: hex64,
      curr: retStackIndex,
      layout: z.string().optional(),
      entries: z.array(
        z.looseObject({
          index: retStackIndex.optional(),
          wordOffset: retStackIndex.optional(),
          ret: hex64,
          func: hex64,
          retp: hex64.optional(),
          fp: hex64.optional(),
        }),
      ),
    })
    .optional(),
  kretprobes: z.array(z.looseObject({ retAddr: hex64, fp: hex64 })).optional(),
  kernelTraceFull: z.array(traceEntry).optional(),
  kernelTrace: z.array(traceEntry).optional(),
  /** A generated capture's own trace (klpsim's walk, not the kernel's). */
  generatedTraceFull: z.array(traceEntry).optional(),
  kernelReliable: z
    .looseObject({
      ret: traceCount,
      entries: traceCount.optional(),
      size: traceCount.optional(),
      trace: z.array(traceEntry),
    })
    .optional(),
});

export const captureSchema = z.looseObject({
  format: z.literal('arm64-stack-capture/v1'),
  /** Present when the capture was generated (exportCapture), not taken from a kernel. */
  generated: z.looseObject({ by: z.string() }).optional(),
  kernel,
  symbols: z.array(symbol),
  // A pid names one task: two tasks with one pid would make `--pid` and the oracle ambiguous.
  tasks: z.array(task).superRefine((tasks, ctx) => {
    const seen = new Set<number>();
    tasks.forEach((t, i) => {
      if (seen.has(t.pid))
        ctx.addIssue({ code: 'custom', path: [i, 'pid'], message: `pid ${t.pid} appears twice` });
      seen.add(t.pid);
    });
  }),
  skippedTasks: z
    .array(
      z.looseObject({
        pid,
        comm: z.string(),
        cpu: cpuId.optional(),
        reason: z.string(),
      }),
    )
    .optional(),
});

export type CaptureDocument = z.infer<typeof captureSchema>;
export type CaptureTask = CaptureDocument['tasks'][number];
export type CaptureTraceEntry = z.infer<typeof traceEntry>;
