import { formatAddr } from '@klpsim/arm64';
import {
  analyseKernelFunction,
  FrameStateCode,
  type FunctionFrames,
  kernelFunctions,
  STATE_NAMES,
} from '@klpsim/frames';
import {
  type FrameDesc,
  irqPreempted,
  type KernelDesc,
  type Machine,
  mulberry32,
  upperBound,
} from '@klpsim/kernel';

/**
 * The population a judge walks: tasks interrupted by an IRQ at instructions
 * drawn uniformly from a real kernel's text, each with the frame state
 * that kernel has at the drawn instruction.
 *
 * The stacks are built (@klpsim/kernel's builder), since only a built task
 * has a known true chain: the interrupted function gets the plain GCC body
 * and is stopped at the word whose state matches the draw (entry: L, LR
 * not yet signed; after `paciasp`: L, signed; after the push: S; the body:
 * F), with the drawn frame size; the stack and pt_regs are then what that
 * state leaves (`exception: { lr: 'text' }`). A draw with no frame state
 * (SYM_CODE, a function the analysis refuses, code no path reaches) is
 * built as an exception in a SYM_CODE function that has pushed its record:
 * the builder knows that truth, the frame state does not.
 */

/** One drawn instruction of the real kernel. */
export interface Draw {
  /** The real pc, and what it is. */
  readonly pc: number;
  readonly function: string;
  readonly offset: number;
  readonly state: 'L' | 'S' | 'F' | 'none';
  readonly lrSigned: boolean;
  /** The frame the record closes (S, F): 16 to 496 bytes, as the builder can write it. */
  readonly frameSize: number;
}

/** What the draws are taken from: every instruction of every function the Machine holds text for. */
export interface DrawSource {
  readonly functions: readonly FunctionFrames[];
  /** Instructions before function i (cumulative), for a uniform draw by index. */
  readonly before: Float64Array;
  readonly instructions: number;
}

/** The analysed text of `machine` (functions whose text it does not hold are no instructions of it). */
export function drawSource(machine: Machine): DrawSource {
  const functions = kernelFunctions(machine)
    .map((f) => analyseKernelFunction(machine, f))
    .filter((f) => f.refusal?.reason !== 'text-not-dumped');
  const before = new Float64Array(functions.length + 1);
  for (let i = 0; i < functions.length; i++) before[i + 1] = before[i]! + functions[i]!.size / 4;
  return { functions, before, instructions: before[functions.length]! };
}

/** `count` instructions drawn uniformly (seeded: the same draws on any machine). */
export function drawInstructions(source: DrawSource, count: number, seed: number): Draw[] {
  const rand = mulberry32(seed);
  const out: Draw[] = [];
  const { functions, before } = source;
  for (let k = 0; k < count; k++) {
    const index = Math.floor(rand() * source.instructions);
    // The function holding instruction `index`: the last with before[k] <= index.
    const k = upperBound(before, index) - 1;
    const f = functions[k]!;
    const i = index - before[k]!;
    const code = f.refusal === null ? f.state[i]! : FrameStateCode.NONE;
    const state = STATE_NAMES[code]!;
    const record = f.recordOffset[i] ?? 0;
    out.push({
      pc: f.start + i * 4,
      function: f.name,
      offset: i * 4,
      state,
      lrSigned: code !== FrameStateCode.NONE && f.lrSigned[i] === 1,
      frameSize: Math.min(496, Math.max(16, Math.ceil(-record / 16) * 16)),
    });
  }
  return out;
}

/** The offset of the plain push body (prologue.ts) whose state is the draw's. */
function offsetFor(d: Draw, pac: boolean): number {
  switch (d.state) {
    case 'L':
      return d.lrSigned && pac ? 4 : 0;
    case 'S':
      return 8;
    default:
      return 0x20;
  }
}

/**
 * The function a draw is interrupted in: one per class of draws (state,
 * signed LR, frame size), so that the caller's body has a call site for
 * each and the same class is the same text in every task.
 */
function interruptedName(d: Draw, pac: boolean): string {
  switch (d.state) {
    case 'none':
      return 'judged_none';
    case 'L':
      return d.lrSigned && pac ? 'judged_L_signed' : 'judged_L';
    default:
      return `judged_${d.state}_${d.frameSize}`;
  }
}

/**
 * The description of the population: one kthread per draw, IRQ-preempted
 * at its drawn state, on the layout of the kernel drawn from.
 */
export function populationDesc(
  draws: readonly Draw[],
  pac: boolean,
  layout: 'mainline' | 'linux-6.1',
): KernelDesc {
  const head = irqPreempted('saved').slice(0, 7);
  const functions = new Map<string, NonNullable<KernelDesc['functions']>[number]>();
  const tasks = draws.map((d, k) => {
    const name = interruptedName(d, pac);
    functions.set(
      name,
      d.state === 'none'
        ? { name, size: 0x100, symCode: true }
        : { name, size: 0x100, shape: 'push' as const },
    );
    const interrupted: FrameDesc =
      d.state === 'none'
        ? { fn: name, at: 0x20, exception: { lr: 'saved' } }
        : {
            fn: name,
            at: offsetFor(d, pac),
            frameSize: d.frameSize,
            exception: { lr: 'text' },
          };
    return {
      comm: `judged/${k}`,
      frames: [
        ...head,
        interrupted,
        { fn: 'crc32_update' },
        { fn: 'worker_thread' },
        { fn: 'kthread' },
        { fn: 'ret_from_fork' },
      ],
    };
  });
  return { layout, pac, functions: [...functions.values()], tasks };
}

/** `function+0xoff` at `pc`, for reports. */
export function drawName(d: Draw): string {
  return `${d.function}+0x${d.offset.toString(16)} (${formatAddr(d.pc)})`;
}
