import type { Addr } from '@klpsim/arm64';
import type { InputError, Machine, Result, Task } from '@klpsim/kernel';
import { z } from 'zod';

/**
 * The livepatch objects (include/linux/livepatch.h): a patch of objects
 * (vmlinux or a module) of functions, each replacing `old_func` with
 * `new_func`, and the tasks the consistency model moves between states.
 */

export const KLP_TRANSITION_IDLE = -1;
export const KLP_TRANSITION_UNPATCHED = 0;
export const KLP_TRANSITION_PATCHED = 1;

export interface KlpFunc {
  readonly oldName: string;
  /** Which of several same-named symbols (1-based; 0: the name is unique). */
  readonly oldSympos: number;
  /** NaN while the object's module is not loaded. */
  oldFunc: Addr;
  oldSize: number;
  readonly newFunc: Addr;
  readonly newSize: number;
  /** Atomic replace: restores the original code (`new_func = old_func`). */
  readonly nop: boolean;
  patched: boolean;
  transition: boolean;
  readonly object: KlpObject;
}

export interface KlpObject {
  /** null for vmlinux, else the module's name. */
  readonly name: string | null;
  readonly funcs: KlpFunc[];
  patched: boolean;
  readonly patch: KlpPatch;
}

/** `struct klp_state`: a system state a cumulative patch may require or change. */
export interface KlpState {
  readonly id: number;
  readonly version: number;
}

export interface KlpPatch {
  /** The patch module's name (what the kernel prints between quotes). */
  readonly name: string;
  readonly objects: KlpObject[];
  readonly replace: boolean;
  readonly states: readonly KlpState[];
  enabled: boolean;
  forced: boolean;
}

/** A task as livepatch sees it. */
export interface LpTask {
  readonly pid: number;
  readonly comm: string;
  readonly kthread: boolean;
  /** An idle ("swapper") task, one per CPU. */
  readonly idle: boolean;
  cpu: number;
  patchState: number;
  /** TIF_PATCH_PENDING. */
  pending: boolean;
  /** On a CPU right now (and not the caller): its stack cannot be checked (-EBUSY). */
  running: boolean;
  /** In user space: its kernel stack is empty; it switches at its next kernel exit. */
  inUser: boolean;
  /** The stack image the walker reads while the task is blocked in the kernel. */
  stack: Task | null;
  /** The true call chain (pcs, innermost first) it is blocked in, for the consistency checker. */
  chain: readonly Addr[] | null;
  /** Sleeping in TASK_INTERRUPTIBLE: signals and kthread wake-ups reach it. */
  interruptible: boolean;
}

/** Describes a patch: zod first. */
export const funcSpecSchema = z.strictObject({
  oldName: z.string().min(1),
  oldSympos: z.number().int().nonnegative().optional(),
  /** The module the function is in; vmlinux when absent. */
  object: z.string().optional(),
  /** Size of the replacement in bytes (default: the original's). */
  newSize: z.number().int().positive().optional(),
});

export const patchSpecSchema = z.strictObject({
  name: z.string().min(1),
  funcs: z.array(funcSpecSchema).min(1),
  replace: z.boolean().optional(),
  states: z.array(z.strictObject({ id: z.number().int(), version: z.number().int() })).optional(),
});

export type FuncSpec = z.infer<typeof funcSpecSchema>;
export type PatchSpec = z.infer<typeof patchSpecSchema>;

/** Where new functions go: above every loaded module, 1 MiB apart per patch. */
const PATCH_AREA_STEP = 0x100000;

/**
 * Resolves a patch against a kernel: each old function by name (and
 * sympos) and its size from kallsyms, as `klp_find_object_symbol` and
 * `kallsyms_lookup_size_offset` do; the new functions are placed in a new
 * module's text, which becomes text and gets kallsyms names. Functions of a
 * module that is not loaded stay unresolved until it loads.
 */
export function resolvePatch(
  machine: Machine,
  spec: PatchSpec,
  index: number,
): Result<KlpPatch, InputError> {
  const patch: KlpPatch = {
    name: spec.name,
    objects: [],
    replace: spec.replace ?? false,
    states: spec.states ?? [],
    enabled: false,
    forced: false,
  };
  const modules = machine.text.loadedModules();
  const top = Math.max(machine.text.core.end, ...modules.map((m) => m.end));
  const base = Math.ceil(top / PATCH_AREA_STEP) * PATCH_AREA_STEP + PATCH_AREA_STEP * (index + 1);
  let cursor = base;
  const syms = [];
  for (const [i, f] of spec.funcs.entries()) {
    const objName = f.object ?? null;
    let obj = patch.objects.find((o) => o.name === objName);
    if (obj === undefined) {
      obj = { name: objName, funcs: [], patched: false, patch };
      patch.objects.push(obj);
    }
    const loaded = objName === null || modules.some((m) => m.name === objName);
    let oldFunc = Number.NaN;
    let oldSize = 0;
    if (loaded) {
      const r = findOldFunc(machine, f.oldName, f.oldSympos ?? 0);
      if (r === null) {
        return {
          ok: false,
          error: {
            code: 'KLPSIM_INPUT_INVALID',
            message: `no function ${f.oldName}${f.oldSympos ? ` (sympos ${f.oldSympos})` : ''} in ${objName ?? 'vmlinux'}`,
            field: `funcs[${i}].oldName`,
            expected: 'a text symbol of the kernel',
          },
        };
      }
      oldFunc = r.address;
      oldSize = r.size;
    }
    const newSize = f.newSize ?? (oldSize > 0 ? oldSize : 0x100);
    const newFunc = cursor;
    syms.push({ name: `livepatch_${f.oldName}`, address: newFunc, type: 't', module: spec.name });
    cursor += Math.ceil(newSize / 16) * 16;
    obj.funcs.push({
      oldName: f.oldName,
      oldSympos: f.oldSympos ?? 0,
      oldFunc,
      oldSize,
      newFunc,
      newSize,
      nop: false,
      patched: false,
      transition: false,
      object: obj,
    });
  }
  machine.text.addModule({ name: spec.name, start: base, end: cursor });
  machine.kallsyms.addModule(spec.name, base, cursor, syms);
  return { ok: true, value: patch };
}

/** The address and kallsyms size of the `sympos`-th text symbol called `name` (0: it must be unique). */
export function findOldFunc(
  machine: Machine,
  name: string,
  sympos: number,
): { address: Addr; size: number } | null {
  const all = machine.kallsyms.addressesOf(name);
  const fromModule = machine.kallsyms.addressOf(name);
  if (all.length === 0 && fromModule !== undefined) all.push(fromModule);
  // klp_find_object_symbol: sympos 0 requires a unique name; sympos N picks the N-th.
  if (sympos === 0 ? all.length !== 1 : sympos > all.length) return null;
  const address = all[sympos === 0 ? 0 : sympos - 1]!;
  const hit = machine.kallsyms.lookup(address);
  return hit === null ? null : { address, size: hit.size };
}

/** A nop func for atomic replace: covers a function an older patch changed, runs the original. */
export function nopFunc(obj: KlpObject, of: KlpFunc): KlpFunc {
  return {
    oldName: of.oldName,
    oldSympos: of.oldSympos,
    oldFunc: of.oldFunc,
    oldSize: of.oldSize,
    newFunc: of.oldFunc,
    newSize: of.oldSize,
    nop: true,
    patched: false,
    transition: false,
    object: obj,
  };
}
