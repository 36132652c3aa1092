import {
  type BuiltMachine,
  buildMachine,
  FRAME_SHAPES,
  formatInputError,
  IDLE_TASK,
  irqPreempted,
  type KernelDesc,
  KWORKER,
  syntheticKernelDesc,
  USER_NANOSLEEP,
} from '@klpsim/kernel';
import { describe, expect, it } from 'vitest';
import { analyseKernelFunction, kernelFunctions, rowOf } from '../src/index.js';

/**
 * The builder writes every function's text and, word by word, the frame
 * state it made (truth by construction, packages/kernel/src/builder/prologue.ts).
 * The analysis reads only the text: it must find exactly that truth.
 */

function build(desc: KernelDesc): BuiltMachine {
  const r = buildMachine(desc);
  if (!r.ok) throw new Error(formatInputError(r.error));
  return r.value;
}

/** Functions no chain uses, in every size class, so that every shape is written. */
const EXTRA = Array.from({ length: 48 }, (_, i) => ({
  name: `shape_probe_${i}`,
  size: [0x40, 0x44, 0x7c, 0x200][i % 4]!,
}));

const CATALOGUE_TASKS = [
  { frames: [...USER_NANOSLEEP] },
  { frames: [...KWORKER] },
  { frames: [...IDLE_TASK] },
  { frames: irqPreempted('saved') },
  { frames: irqPreempted('unsaved') },
  { frames: [...KWORKER.slice(0, 3), { fn: 'deep_frame', frameSize: 224 }, ...KWORKER.slice(3)] },
];

/** Every shape forced on a function an exception interrupts (lr 'text'), at its second word. */
const FORCED_SHAPES: KernelDesc = {
  functions: FRAME_SHAPES.map((shape) => ({ name: `forced_${shape}`, size: 0x80, shape })),
  tasks: FRAME_SHAPES.map((shape) => ({
    frames: irqPreempted('saved').map((f) =>
      f.fn === 'crc32_body'
        ? { fn: `forced_${shape}`, at: 4, exception: { lr: 'text' as const } }
        : f,
    ),
  })),
};

const KERNELS: [string, KernelDesc][] = [
  ['synthetic (200 tasks)', syntheticKernelDesc({ tasks: 200 })],
  ['synthetic, linux-6.1 layout', syntheticKernelDesc({ tasks: 50, layout: 'linux-6.1', seed: 7 })],
  ['catalogue, PAC', { functions: EXTRA, tasks: CATALOGUE_TASKS }],
  ['catalogue, no PAC', { pac: false, functions: EXTRA, tasks: CATALOGUE_TASKS }],
  [
    'catalogue, linux-6.1 layout, a module',
    {
      layout: 'linux-6.1',
      functions: [...EXTRA, { name: 'mod_fn', section: 'module', module: 'm1', size: 0x80 }],
      tasks: [{ frames: [...KWORKER.slice(0, 3), { fn: 'mod_fn' }, ...KWORKER.slice(3)] }],
    },
  ],
  ['forced shapes, each interrupted (lr text)', FORCED_SHAPES],
];

describe('the analysis agrees with the builder on every instruction of a built kernel', () => {
  for (const [name, desc] of KERNELS) {
    it(name, () => {
      const built = build(desc);
      const machine = built.machine;
      const analysed = new Map(
        kernelFunctions(machine).map((f) => [f.start, analyseKernelFunction(machine, f)]),
      );
      let compared = 0;
      const wrong: string[] = [];
      for (const truth of built.frames) {
        const a = analysed.get(truth.start);
        // Generated areas (BPF, trampolines) are not kallsyms text of the kernel or a module.
        if (a === undefined) {
          expect(machine.text.describe(truth.start)).toMatch(/not text|bpf|ftrace|kprobe/);
          continue;
        }
        if (truth.shape === 'sym-code') {
          expect(a.refusal?.reason, truth.name).toBe('sym-code');
          continue;
        }
        expect(a.refusal, truth.name).toBeNull();
        const words = a.size / 4;
        for (let i = 0; i < words; i++) {
          const want = truth.rows[i] ?? null;
          const row = rowOf(a, i);
          const got =
            row === null
              ? null
              : {
                  state: row.state,
                  cfa: row.cfa,
                  record: row.record?.fp ?? null,
                  lrSigned: row.lrSigned,
                };
          compared++;
          if (JSON.stringify(got) !== JSON.stringify(want))
            wrong.push(
              `${truth.name}+0x${(i * 4).toString(16)} (${truth.shape}): ${JSON.stringify(got)} != ${JSON.stringify(want)}`,
            );
        }
      }
      expect(wrong.slice(0, 10)).toEqual([]);
      expect(compared).toBeGreaterThan(1000);
    });
  }

  it('every shape the builder knows is written and checked', () => {
    const built = build({ functions: EXTRA, tasks: CATALOGUE_TASKS });
    const seen = new Set(built.frames.map((f) => f.shape));
    expect(FRAME_SHAPES.filter((s) => !seen.has(s))).toEqual([]);
    expect(seen.has('sym-code')).toBe(true);
  });
});
