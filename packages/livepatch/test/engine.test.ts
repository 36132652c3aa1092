import { fileURLToPath } from 'node:url';
import { buildMachine, loadCapture, loadModule, type Machine } from '@klpsim/kernel';
import { POLICIES } from '@klpsim/unwind';
import { describe, expect, it } from 'vitest';
import {
  buildPatch,
  KLP_TRANSITION_PATCHED,
  KLP_TRANSITION_UNPATCHED,
  KlpCore,
  type KlpObserver,
  type KlpPatch,
  klpCancelTransition,
  klpCheckStackFunc,
  klpEnablePatch,
  klpFtraceHandler,
  klpInitTransition,
  klpTryCompleteTransition,
  type LpTask,
  LpTaskList,
  mixedVersionOn,
  predictTransition,
} from '../src/index.js';

/** A patch module built and loaded (insmod), not yet enabled. */
function insmod(m: Machine, spec: Parameters<typeof buildPatch>[1], index: number): KlpPatch {
  const p = buildPatch(m, spec, index);
  const r = loadModule(m, p.module);
  if (!r.ok) throw new Error(r.error.message);
  return p;
}

const CAP72 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-7.2-arm64-plain/capture.json', import.meta.url),
);
const silent: KlpObserver = { message: () => {}, switched: () => {}, blocked: () => {} };

describe('klpsim predict on the real 7.2 capture', () => {
  /** One pass over the capture as if a patch of do_nanosleep were enabled (or disabled) now. */
  function predictNanosleep(unpatch: boolean) {
    const cap = loadCapture(CAP72);
    if (!cap.ok) throw new Error(cap.error.message);
    const r = predictTransition(
      cap.value.machine,
      POLICIES.mainline,
      { name: 'p', funcs: [{ oldName: 'do_nanosleep' }] },
      unpatch,
    );
    if (!r.ok) throw new Error(r.error.message);
    return { cap, r };
  }

  it('patching do_nanosleep blocks exactly the tasks whose reliable trace holds it', () => {
    const { cap, r } = predictNanosleep(false);
    const expected = [...cap.value.oracle]
      .filter(([, o]) => o.reliable!.trace.some((e) => e.symbol.startsWith('do_nanosleep+')))
      .map(([pid]) => pid)
      .sort((a, b) => a - b);
    expect(expected.length).toBeGreaterThan(0);
    const sleeping = r.value.tasks.filter((t) => t.result === 'sleeping');
    expect(sleeping.map((t) => t.pid)).toEqual(expected);
    expect(sleeping.every((t) => t.function === 'do_nanosleep')).toBe(true);
    // The tasks the capture skipped were running when captured.
    expect(r.value.tasks.filter((t) => t.result === 'running').map((t) => t.pid)).toEqual(
      cap.value.machine.skippedTasks.map((t) => t.pid),
    );
    expect(r.value.tasks.filter((t) => t.result === 'switches')).toHaveLength(
      cap.value.machine.tasks.length - expected.length,
    );
  });

  it('unpatching checks the new function, which no captured task is in', () => {
    const { r } = predictNanosleep(true);
    expect(r.value.tasks.filter((t) => t.result === 'sleeping')).toEqual([]);
  });
});

describe('which range klp_check_stack_func checks', () => {
  const built = buildMachine({
    tasks: [
      { frames: [{ fn: '__switch_to' }, { fn: 'f' }, { fn: 'kthread' }, { fn: 'ret_from_fork' }] },
    ],
  });
  if (!built.ok) throw new Error(built.error.message);
  const m = built.value.machine;
  const task: LpTask = {
    pid: 1,
    comm: 't',
    kthread: true,
    idle: false,
    cpu: 0,
    patchState: -1,
    pending: false,
    running: false,
    stack: null,
    chain: null,
  };
  const core = new KlpCore(m, POLICIES.mainline, new LpTaskList([task]), silent);
  const hooks = { signal: () => {}, wakeIdle: () => {} };
  const at = (a: number) => Float64Array.of(a + 4);
  const a = { value: insmod(m, { name: 'a', funcs: [{ oldName: 'f' }] }, 0) };
  const b = { value: insmod(m, { name: 'b', funcs: [{ oldName: 'f' }] }, 1) };
  const c = { value: insmod(m, { name: 'c', funcs: [{ oldName: 'kthread' }], replace: true }, 2) };
  const fA = a.value.objects[0]!.funcs[0]!;
  const fB = b.value.objects[0]!.funcs[0]!;
  let old = 0;
  const handler = (state: number) => klpFtraceHandler(core.funcStacks.get(old), state);

  it('patching the first patch: the original function', () => {
    expect(klpEnablePatch(core, a.value)).toBe(0);
    old = fA.oldFunc;
    expect(klpCheckStackFunc(core, fA, at(old), 1)).toBe(true);
    expect(klpCheckStackFunc(core, fA, at(fA.newFunc), 1)).toBe(false);
    // The ftrace handler: a task not yet switched runs the original, a switched one the new code.
    expect(handler(KLP_TRANSITION_UNPATCHED)).toBeNull();
    expect(handler(KLP_TRANSITION_PATCHED)).toBe(fA);
    // The independent checker agrees: a task in the original may not switch, one in the new code may not stay.
    expect(mixedVersionOn(core.funcStacks, [old + 4], KLP_TRANSITION_PATCHED)).toBe('f');
    expect(mixedVersionOn(core.funcStacks, [old + 4], KLP_TRANSITION_UNPATCHED)).toBeNull();
    expect(mixedVersionOn(core.funcStacks, [fA.newFunc + 4], KLP_TRANSITION_UNPATCHED)).toBe('f');
    expect(klpTryCompleteTransition(core, hooks)).toBe(true);
  });

  it("stacked patches: the previous patch's new function", () => {
    klpEnablePatch(core, b.value);
    expect(klpCheckStackFunc(core, fB, at(fA.newFunc), 1)).toBe(true);
    expect(klpCheckStackFunc(core, fB, at(old), 1)).toBe(false);
    expect(handler(KLP_TRANSITION_UNPATCHED)).toBe(fA);
    expect(klpTryCompleteTransition(core, hooks)).toBe(true);
  });

  it('atomic replace: a nop for every function the older patches changed, checking their new code', () => {
    klpEnablePatch(core, c.value);
    const nop = c.value.objects.flatMap((o) => o.funcs).find((f) => f.nop && f.oldName === 'f')!;
    expect(nop.newFunc).toBe(old);
    expect(klpCheckStackFunc(core, nop, at(fB.newFunc), 1)).toBe(true);
    expect(handler(KLP_TRANSITION_PATCHED)).toBeNull();
    expect(klpTryCompleteTransition(core, hooks)).toBe(true);
    expect(core.patches).toEqual([c.value]);
    expect(c.value.objects.flatMap((o) => o.funcs).some((f) => f.nop)).toBe(false);
    expect(core.funcStacks.get(old)).toBeUndefined();
  });
});

describe('cancel', () => {
  it('an enable that fails after init goes back to unpatched and leaves no trace', () => {
    const built = buildMachine({
      tasks: [
        {
          frames: [{ fn: '__switch_to' }, { fn: 'g' }, { fn: 'kthread' }, { fn: 'ret_from_fork' }],
        },
      ],
    });
    if (!built.ok) throw new Error(built.error.message);
    const messages: string[] = [];
    const core = new KlpCore(built.value.machine, POLICIES.mainline, new LpTaskList([]), {
      debug: true,
      message: (m) => messages.push(m),
      switched: () => {},
      blocked: () => {},
    });
    const p = { value: insmod(built.value.machine, { name: 'p', funcs: [{ oldName: 'g' }] }, 0) };
    core.patches.push(p.value);
    klpInitTransition(core, p.value, KLP_TRANSITION_PATCHED);
    klpCancelTransition(core);
    expect(messages).toEqual([
      "livepatch: 'p': initializing patching transition",
      "livepatch: 'p': canceling patching transition, going to unpatch",
      "livepatch: 'p': completing unpatching transition",
      "livepatch: 'p': unpatching complete",
    ]);
    expect(core.transitionPatch).toBeNull();
    expect(core.patches).toEqual([]);
    expect(p.value.objects[0]!.funcs[0]!.transition).toBe(false);
  });
});
