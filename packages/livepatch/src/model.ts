import type { Addr } from '@klpsim/arm64';
import type { KernelModule, KernelSymbol, Machine, Task } from '@klpsim/kernel';
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
  /** Which of several same-named symbols (1-based; 0: the name must be unique). */
  readonly oldSympos: number;
  /** NaN until `klp_init_object_loaded` finds it (the object's module loaded, the patch enabled). */
  oldFunc: Addr;
  oldSize: number;
  /** Where the replacement lives in the patch module's text (for a nop: the original). */
  newFunc: Addr;
  newSize: number;
  /** Atomic replace: restores the original code (`new_func = old_func`). */
  readonly nop: boolean;
  patched: boolean;
  transition: boolean;
  readonly object: KlpObject;
}

/** What an object's callback returns, when it has one (`struct klp_callbacks`). */
export interface KlpCallbacks {
  /** `pre_patch`'s return value: 0, or a -errno that makes the kernel refuse the patch (or the module). */
  readonly prePatch: number | null;
  readonly postPatch: boolean;
  readonly preUnpatch: boolean;
  readonly postUnpatch: boolean;
}

export interface KlpObject {
  /** null for vmlinux, else the module's name. */
  readonly name: string | null;
  readonly funcs: KlpFunc[];
  readonly callbacks: KlpCallbacks;
  /** `callbacks.post_unpatch_enabled`: set by a pre-patch callback that did not fail. */
  postUnpatchEnabled: boolean;
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
  /** The patch module's text: the new functions, placed when the module is built. */
  readonly module: KernelModule;
  enabled: boolean;
  forced: boolean;
}

/** A task as livepatch sees it. */
export interface LpTask {
  readonly pid: number;
  readonly comm: string;
  /** PF_KTHREAD: no user space, so no kernel exit; `klp_send_signals` only wakes it. */
  readonly kthread: boolean;
  /** An idle ("swapper") task, one per CPU. */
  readonly idle: boolean;
  cpu: number;
  patchState: number;
  /** TIF_PATCH_PENDING. */
  pending: boolean;
  /** `task_curr()`: on a CPU right now (and not the caller): its stack cannot be checked (-EBUSY). */
  running: boolean;
  /** The stack image the walker reads while the task is blocked in the kernel. */
  stack: Task | null;
  /** The true call chain (pcs, innermost first) it is blocked in, for the consistency checker. */
  chain: readonly Addr[] | null;
}

/** An object's callbacks in a patch description: each present one is called; `prePatch` may fail. */
export const callbacksSpecSchema = z.strictObject({
  /** The pre-patch callback's return value (0: success; a negative errno refuses the patch or the module). */
  prePatch: z.number().int().min(-4095).max(0).optional(),
  postPatch: z.boolean().optional(),
  preUnpatch: z.boolean().optional(),
  postUnpatch: z.boolean().optional(),
});

/** Describes a patch: zod first. */
export const funcSpecSchema = z.strictObject({
  oldName: z.string().min(1),
  oldSympos: z.number().int().nonnegative().max(1_000_000).optional(),
  /** The module the function is in; vmlinux when absent. */
  object: z.string().min(1).optional(),
  /** Size of the replacement in bytes (default: 256, the size of a small function). */
  newSize: z.number().int().positive().max(0x100000).optional(),
});

export const patchSpecSchema = z.strictObject({
  name: z.string().min(1),
  funcs: z.array(funcSpecSchema).min(1).max(10_000),
  replace: z.boolean().optional(),
  states: z
    .array(
      z.strictObject({
        id: z.number().int().min(0).max(0xffffffff),
        version: z.number().int().min(0).max(0xffffffff),
      }),
    )
    .max(1000)
    .optional(),
  /** Callbacks per object: "vmlinux" or a module name. */
  callbacks: z.record(z.string().min(1), callbacksSpecSchema).optional(),
});

export type FuncSpec = z.infer<typeof funcSpecSchema>;
export type PatchSpec = z.infer<typeof patchSpecSchema>;

/** Where new functions go: above every loaded module, 1 MiB apart per patch. */
const PATCH_AREA_STEP = 0x100000;
/** The size of a replacement whose description gives none. */
const DEFAULT_NEW_SIZE = 0x100;

/**
 * Builds a patch and its module from a description, as compiling the
 * livepatch module would: the new functions are laid out in the module's
 * text (`livepatch_<name>` symbols); nothing is looked up in the running
 * kernel yet. That happens at enable (`klp_init_object_loaded`), so a
 * missing function fails there, with the kernel's message.
 */
export function buildPatch(machine: Machine, spec: PatchSpec, index: number): KlpPatch {
  const top = Math.max(machine.text.core.end, ...machine.text.loadedModules().map((m) => m.end));
  const base = Math.ceil(top / PATCH_AREA_STEP) * PATCH_AREA_STEP + PATCH_AREA_STEP * (index + 1);
  const symbols: KernelSymbol[] = [];
  const objects: KlpObject[] = [];
  const patch: KlpPatch = {
    name: spec.name,
    objects,
    replace: spec.replace ?? false,
    states: spec.states ?? [],
    module: { name: spec.name, start: base, end: base, symbols, bytes: null },
    enabled: false,
    forced: false,
  };
  let cursor = base;
  for (const f of spec.funcs) {
    const objName = f.object ?? null;
    const obj = objectOf(patch, objName, spec);
    const newSize = f.newSize ?? DEFAULT_NEW_SIZE;
    symbols.push({ name: `livepatch_${f.oldName}`, address: cursor, type: 't', module: spec.name });
    obj.funcs.push({
      oldName: f.oldName,
      oldSympos: f.oldSympos ?? 0,
      oldFunc: Number.NaN,
      oldSize: 0,
      newFunc: cursor,
      newSize,
      nop: false,
      patched: false,
      transition: false,
      object: obj,
    });
    cursor += Math.ceil(newSize / 16) * 16;
  }
  // Objects with callbacks but no function are still objects of the patch.
  for (const name of Object.keys(spec.callbacks ?? {}))
    objectOf(patch, name === 'vmlinux' ? null : name, spec);
  (patch as { module: KernelModule }).module = { ...patch.module, end: cursor };
  return patch;
}

function objectOf(patch: KlpPatch, name: string | null, spec: PatchSpec): KlpObject {
  let obj = patch.objects.find((o) => o.name === name);
  if (obj === undefined) {
    const cb = spec.callbacks?.[name ?? 'vmlinux'];
    obj = {
      name,
      funcs: [],
      callbacks: {
        prePatch: cb?.prePatch ?? null,
        postPatch: cb?.postPatch ?? false,
        preUnpatch: cb?.preUnpatch ?? false,
        postUnpatch: cb?.postUnpatch ?? false,
      },
      postUnpatchEnabled: false,
      patched: false,
      patch,
    };
    patch.objects.push(obj);
  }
  return obj;
}

/** Why `klp_find_object_symbol` found nothing, as the kernel says it. */
export type LookupFailure = 'not-found' | 'ambiguous' | 'sympos-not-found' | 'no-size';

/**
 * `klp_find_object_symbol`: the address and kallsyms size of the
 * `sympos`-th text symbol `name` of an object (vmlinux or a loaded module);
 * sympos 0 requires the name to be unique.
 */
export function klpFindObjectSymbol(
  machine: Machine,
  object: string | null,
  name: string,
  sympos: number,
): { address: Addr; size: number } | LookupFailure {
  const all =
    object === null
      ? machine.kallsyms.addressesOf(name)
      : machine.kallsyms.moduleAddressesOf(object, name);
  if (all.length === 0 || (sympos > 0 && sympos > all.length))
    return all.length === 0 ? 'not-found' : 'sympos-not-found';
  if (sympos === 0 && all.length > 1) return 'ambiguous';
  const address = all[sympos === 0 ? 0 : sympos - 1]!;
  const hit = machine.kallsyms.lookup(address);
  // kallsyms_lookup_size_offset, which klp_init_object_loaded calls next.
  return hit === null ? 'no-size' : { address, size: hit.size };
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
