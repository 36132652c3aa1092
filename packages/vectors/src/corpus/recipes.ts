import {
  type CorruptionKind,
  type FrameDesc,
  IDLE_TASK,
  irqPreempted,
  type KernelDesc,
  KTHREAD_TAIL,
  KWORKER as KWORKER_CHAIN,
  SCHEDULE_TOP,
  SYSCALL_TAIL,
  type TaskDesc,
  USER_NANOSLEEP,
} from '@klpsim/kernel';
import type { NewVectorMeta } from '../new.js';

/**
 * The recipes behind the generated part of test-vectors/: one per case, by
 * topic, each naming the kernel rule it pins. Expectations are filled by
 * `newVector` and labelled generated; the Python runner checks them
 * independently.
 */
export interface CorpusRecipe {
  readonly topic: string;
  readonly name: string;
  readonly meta: Omit<NewVectorMeta, 'id'>;
  readonly recipe: KernelDesc;
}

const ST = 'arch/arm64/kernel/stacktrace.c';
const RST = 'Documentation/livepatch/reliable-stacktrace.rst';
const LAYOUTS = ['mainline', 'linux-6.1'] as const;

const USER = [...USER_NANOSLEEP];
const KWORKER = [...KWORKER_CHAIN];
const IDLE = [...IDLE_TASK];
const irqChain = irqPreempted;
const faultChain: FrameDesc[] = [
  ...SCHEDULE_TOP,
  { fn: 'handle_userfault' },
  { fn: 'handle_mm_fault' },
  { fn: 'do_page_fault' },
  { fn: 'do_mem_abort' },
  { fn: 'el1_abort' },
  { fn: 'el1h_64_sync_handler' },
  { fn: 'el1h_64_sync' },
  { fn: '__arch_copy_from_user', at: 0x40, exception: { lr: 'saved' } },
  { fn: 'copy_page_from_iter' },
  { fn: 'pipe_write' },
  { fn: 'vfs_write' },
  { fn: 'ksys_write' },
  { fn: '__arm64_sys_write' },
  ...SYSCALL_TAIL,
];

const one = (
  task: TaskDesc,
  layout: (typeof LAYOUTS)[number],
  extra: Partial<KernelDesc> = {},
): KernelDesc => ({
  layout,
  ...extra,
  tasks: [task],
});

function* termination(): Generator<CorpusRecipe> {
  const cases = [
    ['user-task', USER, 'a user task ends at the FINAL record in its own pt_regs (entry from EL0)'],
    [
      'kthread',
      KWORKER,
      'a kernel thread ends at the FINAL record ret_from_fork leaves in its pt_regs',
    ],
    ['idle-boot-task', IDLE, 'the boot/idle task ends at the FINAL record in init_task pt_regs'],
  ] as const;
  for (const [name, frames, behaviour] of cases)
    for (const layout of LAYOUTS)
      for (const running of [false, true])
        yield {
          topic: 'termination',
          name: `${name}-${layout}${running ? '-running' : ''}`,
          meta: {
            title: `${name} walk ends with success (${layout}${running ? ', current' : ''})`,
            behaviour: `${behaviour}; 6.1 ends when fp reaches &task_pt_regs(task)->stackframe`,
            source: `${ST} kunwind_next_frame_record_meta (mainline), unwind_next (6.1); ${RST} 4.1`,
            tags: ['termination', layout],
          },
          recipe: one(
            {
              frames: [...frames],
              running,
              comm: name,
              ...(name === 'idle-boot-task' ? { kthread: true, pid: 0 } : {}),
            },
            layout,
          ),
        };
}

/** Corruption cases: each kind at several frames, under both layouts. */
function* corruptions(
  topic: string,
  kind: CorruptionKind,
  frames: readonly number[],
  behaviour: string,
  source: string,
  chain: FrameDesc[] = KWORKER,
  layouts: readonly (typeof LAYOUTS)[number][] = LAYOUTS,
): Generator<CorpusRecipe> {
  for (const layout of layouts)
    for (const frame of frames)
      yield {
        topic,
        name: `${kind}-frame${frame}-${layout}`,
        meta: {
          title: `${kind} at frame ${frame} (${layout})`,
          behaviour,
          source,
          tags: [topic, kind, layout],
        },
        recipe: one({ frames: chain, corrupt: [{ kind, frame }] }, layout),
      };
}

function* perCpuStacks(): Generator<CorpusRecipe> {
  for (const stack of ['irq', 'overflow', 'sdei_normal', 'sdei_critical'] as const)
    for (const layout of LAYOUTS)
      for (const mapped of [true, false])
        yield {
          topic: 'per-cpu-stacks',
          name: `${stack}-${layout}${mapped ? '' : '-unreadable'}`,
          meta: {
            title: `current walked from the ${stack} stack (${layout}${mapped ? '' : ', memory not available'})`,
            behaviour:
              'the per-CPU IRQ/overflow stacks are known only to a non-preemptible walk of current, the SDEI stacks only in NMI context; a record must lie wholly on a known stack, and a stack once left is never re-entered',
            source: `${ST} kunwind_stack_walk (stackinfo_get_irq, stackinfo_get_overflow, stackinfo_get_sdei_*); arch/arm64/include/asm/stacktrace/common.h unwind_find_stack; ${RST} 4.1`,
            tags: ['per-cpu-stacks', stack, layout],
          },
          recipe: one(
            {
              running: true,
              frames: [
                { fn: 'arch_stack_walk', stack },
                { fn: 'gic_handle_irq', stack },
                { fn: 'call_on_irq_stack', stack },
                { fn: 'el1_interrupt' },
                { fn: 'el1h_64_irq_handler' },
                { fn: 'el1h_64_irq' },
                { fn: 'crc32_body', at: 0x48, exception: { lr: 'saved' } },
                { fn: 'crc32_update' },
                { fn: 'worker_thread' },
                ...KTHREAD_TAIL,
              ],
            },
            layout,
            { mapCpuStacks: mapped },
          ),
        };
}

/**
 * An IRQ taken while current runs an EFI runtime service: `__efi_rt_asm_wrapper`
 * has pushed its frame record on the task stack and moved sp to the EFI
 * runtime stack, so the IRQ's pt_regs and the handler's first frames lie on
 * that stack, the rest on the IRQ stack.
 */
function* efiStack(): Generator<CorpusRecipe> {
  for (const layout of LAYOUTS)
    for (const mapped of [true, false])
      yield {
        topic: 'per-cpu-stacks',
        name: `efi-${layout}${mapped ? '' : '-unreadable'}`,
        meta: {
          title: `current walked from the IRQ stack through the EFI runtime stack (${layout}${mapped ? '' : ', memory not available'})`,
          behaviour:
            'the EFI runtime stack is known only while current_in_efi() (mainline since v6.2: STACKINFO_EFI); v6.1 and the 2021 series have no such entry, so a record on it ends the walk; mainline crosses it and, reliably, refuses at the PT_REGS boundary',
          source: `${ST} kunwind_stack_walk (STACKINFO_EFI); arch/arm64/include/asm/stacktrace.h stackinfo_get_efi; arch/arm64/include/asm/efi.h current_in_efi; arch/arm64/kernel/efi-rt-wrapper.S __efi_rt_asm_wrapper`,
          tags: ['per-cpu-stacks', 'efi', layout],
        },
        recipe: one(
          {
            running: true,
            frames: [
              { fn: 'arch_stack_walk', stack: 'irq' },
              { fn: 'gic_handle_irq', stack: 'irq' },
              { fn: 'call_on_irq_stack', stack: 'irq' },
              { fn: 'el1_interrupt', stack: 'efi' },
              { fn: 'el1h_64_irq_handler', stack: 'efi' },
              { fn: 'el1h_64_irq', stack: 'efi' },
              { fn: '__efi_rt_asm_wrapper', at: 0x40, exception: { lr: 'saved' } },
              { fn: 'efi_call_rts' },
              { fn: 'process_one_work' },
              { fn: 'worker_thread' },
              ...KTHREAD_TAIL,
            ],
          },
          layout,
          { mapCpuStacks: mapped },
        ),
      };
}

function* exceptions(): Generator<CorpusRecipe> {
  const src = `${ST} kunwind_next_regs_pc, arch_reliable_kunwind_consume_entry; ${RST} 4.3`;
  for (const layout of LAYOUTS) {
    for (const lr of ['saved', 'unsaved'] as const)
      yield {
        topic: 'exceptions',
        name: `irq-preempted-lr-${lr}-${layout}`,
        meta: {
          title: `kthread preempted from an EL1 IRQ, LR ${lr} (${layout})`,
          behaviour:
            lr === 'saved'
              ? 'an exception boundary (PT_REGS meta record) makes the reliable walk fail: the LR may have been live'
              : 'interrupted before its prologue: the caller lives only in LR, so a walk through pt_regs silently skips it; the reliable walk must refuse',
          source: src,
          tags: ['exceptions', 'irq', layout],
        },
        recipe: one({ frames: irqChain(lr) }, layout),
      };
    yield {
      topic: 'exceptions',
      name: `irq-after-adr-lr-${layout}`,
      meta: {
        title: `kthread preempted just after \`ADR LR, <callee>\`, before \`BLR LR\` (${layout})`,
        behaviour:
          "regs[30] holds the callee's address, which reads as a return address into it: an unwinder that consumed LR at the boundary would name the callee as the caller's parent. None of these unwinders reads LR there: the debug walk goes on from regs->regs[29], and the reliable walk refuses the boundary",
        source: `${RST} 4.6 (Link register unreliability); ${ST} kunwind_next_regs_pc`,
        tags: ['exceptions', 'irq', 'adr-lr', layout],
      },
      recipe: one(
        {
          frames: irqChain('saved').map((f) =>
            f.exception !== undefined
              ? { ...f, exception: { lr: 'saved' as const, lrTo: 'crc32_shift' } }
              : f,
          ),
        },
        layout,
      ),
    };
    yield {
      topic: 'exceptions',
      name: `el1-fault-sleeps-${layout}`,
      meta: {
        title: `task asleep in handle_userfault inside a kernel-mode data abort (${layout})`,
        behaviour:
          'an EL1 fault that sleeps leaves a PT_REGS record mid-stack; the reliable walk fails there',
        source: src,
        tags: ['exceptions', 'fault', layout],
      },
      recipe: one({ frames: faultChain }, layout),
    };
    yield {
      topic: 'exceptions',
      name: `pt-regs-first-running-${layout}`,
      meta: {
        title: `current interrupted in the kernel, walked from the vector (${layout})`,
        behaviour:
          'the first record is the PT_REGS meta record: the walk continues at regs->pc (debug) or fails (reliable); the stack is not consumed before the record is read',
        source: `${ST} kunwind_next_frame_record, kunwind_next_frame_record_meta`,
        tags: ['exceptions', 'running', layout],
      },
      recipe: one({ running: true, frames: irqChain('saved').slice(6) }, layout),
    };
  }
}

function* tracers(): Generator<CorpusRecipe> {
  const fsrc = `${ST} kunwind_recover_return_address; kernel/trace/fgraph.c ftrace_graph_ret_addr; ${RST} 4.4`;
  const ksrc = `${ST} kunwind_recover_return_address; kernel/kprobes.c kretprobe_find_ret_addr; ${RST} 4.4`;
  const hook = (
    chain: FrameDesc[],
    at: readonly number[],
    fgraph: boolean,
    kretprobe: boolean,
  ): FrameDesc[] =>
    chain.map((f, i) =>
      at.includes(i)
        ? { ...f, ...(fgraph ? { fgraph } : {}), ...(kretprobe ? { kretprobe } : {}) }
        : f,
    );
  for (const layout of LAYOUTS) {
    const shape = layout === 'mainline' ? 'shadow stack (6.8+)' : 'ret_stack array (6.1)';
    for (const at of [[1], [2], [3], [4], [1, 2, 3], [2, 4, 6]])
      yield {
        topic: 'fgraph',
        name: `hooked-${at.join('-')}-${layout}`,
        meta: {
          title: `function-graph tracer hooked frames ${at.join(', ')}, ${shape}`,
          behaviour:
            'return_to_handler in a saved LR is replaced by the ret_stack entry whose retp is the new fp; checks apply to the recovered pc',
          source: fsrc,
          tags: ['fgraph', layout],
        },
        recipe: one({ frames: hook(USER, at, true, false) }, layout),
      };
    for (const frame of [3, 5])
      yield {
        topic: 'fgraph',
        name: `missing-entry-frame${frame}-${layout}`,
        meta: {
          title: `return_to_handler with no matching ret_stack entry (${shape})`,
          behaviour:
            'no entry matches: the pc would stay return_to_handler, so the walk fails (-EINVAL)',
          source: fsrc,
          tags: ['fgraph', 'missing', layout],
        },
        recipe: one(
          {
            frames: hook(USER, [frame], true, false),
            corrupt: [{ kind: 'missing-fgraph', frame }],
          },
          layout,
        ),
      };
    for (const at of [[1], [3], [5], [2, 3], [1, 4, 6]])
      yield {
        topic: 'kretprobes',
        name: `hooked-${at.join('-')}-${layout}`,
        meta: {
          title: `kretprobes on frames ${at.join(', ')} (${layout})`,
          behaviour:
            'the kretprobe trampoline in a saved LR is replaced by the instance (after kr_cur) whose fp is the new fp',
          source: ksrc,
          tags: ['kretprobes', layout],
        },
        recipe: one({ frames: hook(USER, at, false, true) }, layout),
      };
    for (const frame of [2, 4])
      yield {
        topic: 'kretprobes',
        name: `missing-instance-frame${frame}-${layout}`,
        meta: {
          title: `kretprobe trampoline with no matching instance (${layout})`,
          behaviour:
            'kretprobe_find_ret_addr returns 0: mainline fails (-EINVAL); 6.1 assigns pc 0 and walks on',
          source: ksrc,
          tags: ['kretprobes', 'missing', layout],
        },
        recipe: one(
          {
            frames: hook(USER, [frame], false, true),
            corrupt: [{ kind: 'missing-kretprobe', frame }],
          },
          layout,
        ),
      };
    for (const at of [[3], [2, 5], [4, 6]])
      yield {
        topic: 'fgraph',
        name: `nested-kretprobe-${at.join('-')}-${layout}`,
        meta: {
          title: `function-graph and kretprobe on the same frames ${at.join(', ')} (${layout})`,
          behaviour:
            'the graph tracer is undone first, then the kretprobe trampoline it returned: both nest',
          source: `${fsrc}; ${ksrc}`,
          tags: ['fgraph', 'kretprobes', 'nested', layout],
        },
        recipe: one({ frames: hook(USER, at, true, true) }, layout),
      };
    yield {
      topic: 'fgraph',
      name: `trampoline-mid-return-${layout}`,
      meta: {
        title: `current caught inside return_to_handler (${layout})`,
        behaviour:
          'a pc inside return_to_handler itself (not its first byte) is not rewritten; it is SYM_CODE',
        source: `${fsrc}; arch/arm64/kernel/entry-ftrace.S return_to_handler`,
        tags: ['fgraph', 'trampoline', layout],
      },
      recipe: one(
        {
          running: true,
          frames: [{ fn: 'return_to_handler', at: 0x20, call: 'blr' }, ...KWORKER.slice(3)],
        },
        layout,
      ),
    };
  }
}

function* pac(): Generator<CorpusRecipe> {
  for (const layout of LAYOUTS)
    for (const p of [true, false])
      for (const vaBits of [48, 52] as const)
        yield {
          topic: 'pac',
          name: `${p ? 'signed' : 'unsigned'}-va${vaBits}-${layout}`,
          meta: {
            title: `${p ? 'PAC-signed' : 'unsigned'} return addresses, ${vaBits}-bit VA (${layout})`,
            behaviour:
              'saved LRs carry a PAC in bits above the VA size; the unwinder strips it (bit 55 picks the half) before any check',
            source:
              'arch/arm64/include/asm/compiler.h ptrauth_strip_kernel_insn_pac (XPACLRI); 6.1 arch/arm64/include/asm/pointer_auth.h ptrauth_strip_insn_pac',
            tags: ['pac', layout],
          },
          recipe: one({ frames: USER }, layout, { pac: p, vaBits }),
        };
}

function* symCode(): Generator<CorpusRecipe> {
  const src = `the 2021 series' unwind_is_reliable and sym_code_functions; ${RST} 4.2 (exception vectors and entry assembly)`;
  for (const layout of LAYOUTS) {
    yield {
      topic: 'sym-code',
      name: `mid-chain-${layout}`,
      meta: {
        title: `a return address inside SYM_CODE mid-chain (${layout})`,
        behaviour:
          'a return address in SYM_CODE assembly cannot be unwound through reliably; only the last frame is exempt',
        source: src,
        tags: ['sym-code', layout],
      },
      recipe: one(
        {
          frames: [
            ...SCHEDULE_TOP,
            { fn: 'my_asm_helper' },
            { fn: 'worker_thread' },
            ...KTHREAD_TAIL,
          ],
        },
        layout,
        {
          functions: [{ name: 'my_asm_helper', symCode: true }],
        },
      ),
    };
    for (const [name, frames] of [
      ['ret-from-fork', KWORKER],
      ['el0t-64-sync', USER],
    ] as const)
      yield {
        topic: 'sym-code',
        name: `last-frame-exempt-${name}-${layout}`,
        meta: {
          title: `the last frame (${name}) is SYM_CODE and exempt (${layout})`,
          behaviour:
            'unwind_consume stops at the final frame before unwind_is_reliable, so the entry code is never checked',
          source: src,
          tags: ['sym-code', 'last-frame', layout],
        },
        recipe: one({ frames: [...frames] }, layout),
      };
  }
}

/** Return addresses into a module's PLT veneer, and into a module unloaded since. */
function* modules(): Generator<CorpusRecipe> {
  const chain: FrameDesc[] = [
    ...SCHEDULE_TOP,
    { fn: 'sleeper_fn' },
    { fn: 'sleeper_thread' },
    ...KTHREAD_TAIL,
  ];
  const fns = [
    { name: 'sleeper_fn', section: 'module' as const, module: 'sleepermod' },
    { name: 'sleeper_thread', section: 'module' as const, module: 'sleepermod' },
  ];
  for (const layout of LAYOUTS) {
    yield {
      topic: 'kernel-text',
      name: `module-unloaded-${layout}`,
      meta: {
        title: `return addresses into a module unloaded since (${layout})`,
        behaviour:
          'text of an unloaded module is no longer kernel text (__module_text_address finds no module), so the 2021 series refuses it; mainline does not look',
        source: `kernel/extable.c __kernel_text_address; kernel/module/main.c __module_text_address; ${RST} 4.2`,
        tags: ['kernel-text', 'module', 'unloaded', layout],
      },
      recipe: one({ frames: chain }, layout, { functions: fns, unloadedModules: ['sleepermod'] }),
    };
    yield {
      topic: 'kernel-text',
      name: `module-plt-${layout}`,
      meta: {
        title: `a call through a module PLT veneer (${layout})`,
        behaviour:
          "a veneer branches without linking, so the return address is the caller's, in module text; PLT and veneer code never holds a return address",
        source: `arch/arm64/kernel/module-plts.c; ${RST} 4.2 (PLT entries and veneer functions)`,
        tags: ['kernel-text', 'module', 'plt', layout],
      },
      recipe: one(
        { frames: chain.map((f) => (f.fn === 'sleeper_fn' ? { ...f, call: 'blr' as const } : f)) },
        layout,
        { functions: fns },
      ),
    };
  }
}

function* kernelText(): Generator<CorpusRecipe> {
  const src = `kernel/extable.c __kernel_text_address, kernel_text_address; the 2021 series unwind_is_reliable; ${RST} 4.2`;
  const places = [
    ['init-freed', 'init', true],
    ['init-live', 'init', false],
    ['module', 'module', true],
    ['bpf-jit', 'bpf', true],
    ['ftrace-trampoline', 'ftrace-trampoline', true],
    ['kprobe-slot', 'kprobe-slot', true],
  ] as const;
  for (const layout of LAYOUTS) {
    for (const [name, section, initFreed] of places)
      yield {
        topic: 'kernel-text',
        name: `${name}-${layout}`,
        meta: {
          title: `a return address in ${name.replace('-', ' ')} text (${layout})`,
          behaviour:
            'core, module, generated (BPF JIT, ftrace trampolines, kprobe slots) text is kernel text; init text counts even after it was freed',
          source: src,
          tags: ['kernel-text', section, layout],
        },
        recipe: one(
          {
            frames: [
              ...SCHEDULE_TOP,
              { fn: `fn_in_${section.replace('-', '_')}` },
              { fn: 'worker_thread' },
              ...KTHREAD_TAIL,
            ],
          },
          layout,
          {
            initFreed,
            functions: [{ name: `fn_in_${section.replace('-', '_')}`, section }],
          },
        ),
      };
    yield* corruptions(
      'kernel-text',
      'lr-not-text',
      [2, 4],
      'a return address outside all kernel text is refused by __kernel_text_address',
      src,
      KWORKER,
      [layout],
    );
  }
}

function* callSite(): Generator<CorpusRecipe> {
  const src =
    'Josh Poimboeuf, "livepatch: reliable stack trace" (2015): the instruction before a return address must be a call';
  for (const layout of LAYOUTS) {
    for (const call of ['bl', 'blr', 'blraa', 'blrab', 'blraaz', 'blrabz'] as const)
      yield {
        topic: 'call-site',
        name: `${call}-${layout}`,
        meta: {
          title: `return addresses after ${call} (${layout})`,
          behaviour: 'every call kind counts as a call for the call-site check',
          source: src,
          tags: ['call-site', call, layout],
        },
        recipe: one({ frames: USER.map((f, i) => (i > 0 && i < 8 ? { ...f, call } : f)) }, layout),
      };
    yield* corruptions(
      'call-site',
      'lr-not-after-call',
      [2, 5],
      'a return address not after a call fails the call-site check',
      src,
      USER,
      [layout],
    );
  }
}

function* buffer(): Generator<CorpusRecipe> {
  const src =
    'kernel/stacktrace.c stack_trace_consume_entry; kernel/livepatch/transition.c klp_check_stack (MAX_STACK_ENTRIES 100)';
  for (const layout of LAYOUTS)
    for (const n of [99, 100, 101])
      yield {
        topic: 'buffer',
        name: `${n}-frames-${layout}`,
        meta: {
          title: `a ${n}-frame stack in a 100-entry buffer (${layout})`,
          behaviour:
            'filling the buffer refuses the next entry, so a reliable walk of more than 99 frames fails',
          source: src,
          tags: ['buffer', layout],
        },
        recipe: one(
          {
            frames: [
              ...SCHEDULE_TOP,
              ...Array.from({ length: n - 6 }, (_, i) => ({ fn: `deep_${i}`, frameSize: 16 })),
              { fn: 'worker_thread' },
              ...KTHREAD_TAIL,
            ],
          },
          layout,
        ),
      };
}

function* leafPrologue(): Generator<CorpusRecipe> {
  for (const layout of LAYOUTS)
    for (const at of [0x4, 0x8, 0xc])
      yield {
        topic: 'leaf-prologue',
        name: `interrupted-at-${at}-${layout}`,
        meta: {
          title: `IRQ in a function at +0x${at.toString(16)}, before its frame record exists (${layout})`,
          behaviour:
            'a leaf or mid-prologue function has no record yet: its caller is only in LR and a frame-pointer walk skips it silently. crc32_body is written as a frameless leaf (state L at every word), so its text agrees with the stack (frame-state/ has the same boundaries inside a push prologue)',
          source: `${ST} kunwind_next_regs_pc; ${RST} 4.3 and 4.6 (link register unreliability)`,
          tags: ['leaf-prologue', layout],
        },
        recipe: one(
          { frames: irqChain('unsaved').map((f) => (f.fn === 'crc32_body' ? { ...f, at } : f)) },
          layout,
          { functions: [{ name: 'crc32_body', shape: 'leaf' }] },
        ),
      };
}

function* kprobes(): Generator<CorpusRecipe> {
  const src = `kernel/kprobes.c; arch/arm64/kernel/probes/kprobes.c; ${RST} 4.2, 4.4 and 4.5`;
  for (const layout of LAYOUTS) {
    yield {
      topic: 'kprobes',
      name: `pre-handler-${layout}`,
      meta: {
        title: `a task inside a kprobe pre-handler (BRK exception from EL1) (${layout})`,
        behaviour:
          'the probe hit is an EL1 debug exception: a PT_REGS boundary the reliable walk refuses',
        source: src,
        tags: ['kprobes', layout],
      },
      recipe: one(
        {
          running: true,
          frames: [
            { fn: 'my_pre_handler' },
            { fn: 'kprobe_breakpoint_handler' },
            { fn: 'call_break_hook' },
            { fn: 'el1_dbg' },
            { fn: 'el1h_64_sync_handler' },
            { fn: 'el1h_64_sync' },
            { fn: 'do_nanosleep', at: 0x40, exception: { lr: 'saved' } },
            { fn: 'hrtimer_nanosleep' },
            { fn: 'common_nsleep' },
            { fn: '__arm64_sys_clock_nanosleep' },
            ...SYSCALL_TAIL,
          ],
        },
        layout,
      ),
    };
    yield {
      topic: 'kprobes',
      name: `single-step-slot-${layout}`,
      meta: {
        title: `pc in an out-of-line single-step slot (${layout})`,
        behaviour:
          'the instruction slot is generated text (kernel_text_address counts it), but the exception it runs under is a boundary',
        source: src,
        tags: ['kprobes', 'insn-slot', layout],
      },
      recipe: one(
        {
          running: true,
          frames: [
            { fn: 'el1h_64_sync' },
            { fn: 'kprobe_insn_slot_0', at: 0x8, exception: { lr: 'unsaved' } },
            { fn: 'do_nanosleep' },
            { fn: 'hrtimer_nanosleep' },
            ...SYSCALL_TAIL,
          ],
        },
        layout,
        { functions: [{ name: 'kprobe_insn_slot_0', section: 'kprobe-slot' }] },
      ),
    };
    yield {
      topic: 'kprobes',
      name: `ftrace-with-regs-entry-${layout}`,
      meta: {
        title: `current interrupted at the start of ftrace_caller, the traced function's LR in x9 (${layout})`,
        behaviour:
          'DYNAMIC_FTRACE_WITH_REGS: `mov x9, x30; bl <trampoline>` leaves the return address obscured; the walk must be refused (SYM_CODE trampoline, exception boundary)',
        source: `arch/arm64/kernel/entry-ftrace.S ftrace_caller; ${RST} 4.5`,
        tags: ['kprobes', 'ftrace', 'obscured', layout],
      },
      recipe: one(
        {
          running: true,
          frames: [
            { fn: 'el1h_64_irq' },
            { fn: 'ftrace_caller', at: 0x8, exception: { lr: 'unsaved' } },
            { fn: 'do_nanosleep' },
            { fn: 'hrtimer_nanosleep' },
            ...SYSCALL_TAIL,
          ],
        },
        layout,
      ),
    };
    yield {
      topic: 'kprobes',
      name: `optprobe-return-${layout}`,
      meta: {
        title: `a return address inside an optprobe detour buffer (${layout})`,
        behaviour:
          'an optimized kprobe copies instructions to a detour buffer (generated text); a return address there is text but no symbol',
        source: `${src}; arch/arm64/kernel/probes/opt_arm64.c`,
        tags: ['kprobes', 'optprobe', layout],
      },
      recipe: one(
        {
          frames: [
            ...SCHEDULE_TOP,
            { fn: 'optprobe_tmpl_0' },
            { fn: 'worker_thread' },
            ...KTHREAD_TAIL,
          ],
        },
        layout,
        { functions: [{ name: 'optprobe_tmpl_0', section: 'ftrace-trampoline' }] },
      ),
    };
  }
}

function* uprobes(): Generator<CorpusRecipe> {
  for (const layout of LAYOUTS)
    yield {
      topic: 'uprobes',
      name: `return-to-user-${layout}`,
      meta: {
        title: `a task stopped in uprobe handling on its way back to user space (${layout})`,
        behaviour:
          'uprobe_notify_resume runs from do_notify_resume before ret_to_user; the task sleeps there with an ordinary chain ending at its FINAL record',
        source:
          'kernel/events/uprobes.c uprobe_notify_resume; arch/arm64/kernel/signal.c do_notify_resume',
        tags: ['uprobes', layout],
      },
      recipe: one(
        {
          frames: [
            ...SCHEDULE_TOP,
            { fn: 'uprobe_handle_trampoline' },
            { fn: 'handle_swbp' },
            { fn: 'uprobe_notify_resume' },
            { fn: 'do_notify_resume' },
            { fn: 'el0_da' },
            { fn: 'el0t_64_sync_handler' },
            { fn: 'el0t_64_sync' },
          ],
        },
        layout,
      ),
    };
}

function* startInSchedule(): Generator<CorpusRecipe> {
  for (const layout of LAYOUTS)
    yield {
      topic: 'start-in-schedule',
      name: `not-from-switch-to-${layout}`,
      meta: {
        title: `a blocked task whose saved context is not in __switch_to (${layout})`,
        behaviour:
          'the start-in-schedule check: a blocked task must be walked from the context switch ("make sure it starts from a __schedule() call at the top")',
        source: 'Josh Poimboeuf, "livepatch: reliable stack trace" thread (2015)',
        tags: ['start-in-schedule', layout],
      },
      recipe: one(
        { frames: [{ fn: 'schedule' }, { fn: 'worker_thread' }, ...KTHREAD_TAIL] },
        layout,
      ),
    };
}

/** Every recipe of the generated corpus, in a fixed order. */
export function* corpusRecipes(): Generator<CorpusRecipe> {
  yield* termination();
  yield* corruptions(
    'meta-records',
    'final-misplaced',
    [1, 3],
    'FINAL anywhere but &task_pt_regs(task)->stackframe fails (-EINVAL)',
    `${ST} kunwind_next_frame_record_meta`,
    KWORKER,
    ['mainline'],
  );
  yield* corruptions(
    'meta-records',
    'meta-unknown',
    [1, 2, 3],
    'a meta record of unknown type fails (-EINVAL)',
    `${ST} kunwind_next_frame_record_meta`,
    KWORKER,
    ['mainline'],
  );
  yield* corruptions(
    'meta-records',
    'final-misplaced',
    [1, 3],
    'on 6.1 a zero record is an ordinary record: fp 0 is off every stack',
    '6.1 arch/arm64/kernel/stacktrace.c unwind_next',
    KWORKER,
    ['linux-6.1'],
  );
  yield* corruptions(
    'alignment',
    'misaligned-fp',
    [0, 1, 2, 3, 4],
    'fp & 7 != 0 fails (-EINVAL)',
    `${ST} kunwind_next_frame_record`,
  );
  yield* corruptions(
    'bounds',
    'off-stack',
    [1, 2, 3, 4],
    'a record must lie wholly inside a known stack',
    `arch/arm64/include/asm/stacktrace/common.h unwind_find_stack; ${RST} 4.1`,
  );
  yield* corruptions(
    'bounds',
    'other-stack',
    [1, 3, 5],
    'a stack the walking context does not know is unknown',
    `arch/arm64/include/asm/stacktrace/common.h unwind_find_stack`,
    USER,
  );
  yield* corruptions(
    'bounds',
    'truncated',
    [1, 2, 3, 4],
    'a record with fp = 0 and lr != 0 is consumed; the next step finds no stack at 0',
    `${ST} kunwind_next_frame_record`,
  );
  yield* corruptions(
    'loops',
    'loop',
    [0, 1, 2, 3, 4],
    'a record pointing at itself: consumption (mainline) or prev_fp (6.1) forbids it',
    `arch/arm64/include/asm/stacktrace/common.h unwind_consume_stack; 6.1 unwind_next_common`,
  );
  yield* perCpuStacks();
  yield* efiStack();
  yield* exceptions();
  yield* tracers();
  yield* pac();
  yield* symCode();
  yield* kernelText();
  yield* modules();
  yield* callSite();
  yield* buffer();
  yield* leafPrologue();
  yield* kprobes();
  yield* uprobes();
  yield* startInSchedule();
}
