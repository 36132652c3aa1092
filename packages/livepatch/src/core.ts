import { noFtraceLocation } from './ftrace.js';
import {
  KLP_TRANSITION_PATCHED,
  KLP_TRANSITION_UNPATCHED,
  type KlpObject,
  type KlpPatch,
  klpFindObjectSymbol,
  nopFunc,
} from './model.js';
import {
  EBUSY,
  EINVAL,
  ENOENT,
  type KlpCore,
  klpCancelTransition,
  klpForceTransition,
  klpInitTransition,
  klpIsObjectLoaded,
  klpPostPatchCallback,
  klpPostUnpatchCallback,
  klpPrePatchCallback,
  klpPreUnpatchCallback,
  klpPrint,
  klpReverseTransition,
  klpStartTransition,
  pushFunc,
  unpatchObject,
} from './transition.js';

/**
 * The sysfs and module-notifier side of livepatch (kernel/livepatch/core.c
 * and patch.c): enabling a patch, writing `enabled` and `force`, modules
 * coming and going. Each returns 0 or a -errno, as the kernel does, and
 * prints what the kernel prints on the way.
 */

/** What ftrace knows besides livepatch: functions it cannot trace, other IPMODIFY users. */
export interface FtraceWorld {
  /** Functions declared notrace (built kernels; a capture's text speaks for itself). */
  readonly notrace: ReadonlySet<string>;
  /** Functions another FTRACE_OPS_FL_IPMODIFY user holds (a kprobe with a post_handler, ...). */
  readonly ipmodify: ReadonlySet<string>;
}

export const NO_FTRACE_WORLD: FtraceWorld = { notrace: new Set(), ipmodify: new Set() };

const objName = (obj: KlpObject): string => obj.name ?? 'vmlinux';

/** `klp_is_patch_compatible`: a cumulative patch must keep every state an installed patch set, at no lower version. */
function compatible(core: KlpCore, patch: KlpPatch): boolean {
  for (const old of core.patches) {
    for (const s of old.states) {
      const mine = patch.states.find((x) => x.id === s.id);
      if (mine === undefined ? patch.replace : mine.version < s.version) return false;
    }
  }
  return true;
}

/** `klp_add_nops`: for atomic replace, a nop for every function an older patch changed that this one does not. */
function addNops(core: KlpCore, patch: KlpPatch): void {
  for (const old of core.patches) {
    for (const oobj of old.objects) {
      let obj = patch.objects.find((o) => o.name === oobj.name);
      if (obj === undefined) {
        obj = {
          name: oobj.name,
          funcs: [],
          callbacks: { prePatch: null, postPatch: false, preUnpatch: false, postUnpatch: false },
          postUnpatchEnabled: false,
          patched: false,
          patch,
        };
        patch.objects.push(obj);
      }
      for (const f of oobj.funcs) {
        if (obj.funcs.some((x) => x.oldName === f.oldName && x.oldSympos === f.oldSympos)) continue;
        obj.funcs.push(nopFunc(obj, f));
      }
    }
  }
}

/**
 * `klp_init_object_loaded`: finds every func's old function by name (and
 * sympos) and its size from kallsyms; a nop's new code is the original.
 * Returns 0 or -EINVAL with the kernel's `klp_find_object_symbol` message.
 */
function klpInitObjectLoaded(core: KlpCore, obj: KlpObject): number {
  for (const f of obj.funcs) {
    const r = klpFindObjectSymbol(core.machine, obj.name, f.oldName, f.oldSympos);
    if (typeof r === 'string') {
      if (r === 'no-size') {
        klpPrint(core, 'err', `kallsyms size lookup failed for '${f.oldName}'`);
        return ENOENT;
      }
      // klp_find_object_symbol prints objname as given: NULL for vmlinux, except in the sympos message.
      klpPrint(
        core,
        'err',
        r === 'not-found'
          ? `symbol '${f.oldName}' not found in symbol table`
          : r === 'ambiguous'
            ? `unresolvable ambiguity for symbol '${f.oldName}' in object '${obj.name ?? '(null)'}'`
            : `symbol position ${f.oldSympos} for symbol '${f.oldName}' in object '${objName(obj)}' not found`,
      );
      return EINVAL;
    }
    f.oldFunc = r.address;
    f.oldSize = r.size;
    if (f.nop) {
      f.newFunc = r.address;
      f.newSize = r.size;
    }
  }
  return 0;
}

/**
 * `klp_patch_object`: each func onto its function's func_stack. The first
 * func on a function registers livepatch's ftrace ops there, which fails
 * when ftrace has no location for it (-EINVAL) or another IPMODIFY user
 * holds it (-EBUSY from `register_ftrace_function`); the object's funcs
 * patched so far are then taken off again.
 */
function klpPatchObject(core: KlpCore, obj: KlpObject, world: FtraceWorld): number {
  for (const f of obj.funcs) {
    if (!core.funcStacks.has(f.oldFunc)) {
      if (noFtraceLocation(core.machine, f.oldFunc, f.oldName, world.notrace) !== null) {
        klpPrint(core, 'err', `failed to find location for function '${f.oldName}'`);
        unpatchObject(core, obj);
        return EINVAL;
      }
      if (world.ipmodify.has(f.oldName)) {
        klpPrint(
          core,
          'err',
          `failed to register ftrace handler for function '${f.oldName}' (${EBUSY})`,
        );
        unpatchObject(core, obj);
        return EBUSY;
      }
    }
    pushFunc(core, f);
  }
  obj.patched = true;
  return 0;
}

/**
 * `klp_enable_patch` then `__klp_enable_patch`, in the kernel's order:
 * state compatibility (-EINVAL), `klp_init_patch` (atomic replace's nops,
 * every loaded object's symbols: -EINVAL), another transition (-EBUSY),
 * then "enabling patch", init, each loaded object's pre-patch callback and
 * ftrace registration, start. A failure after init cancels the transition.
 * The first `klp_try_complete_transition` is the caller's (it runs
 * synchronously in the kernel, right after this returns 0).
 */
export function klpEnablePatch(
  core: KlpCore,
  patch: KlpPatch,
  world: FtraceWorld = NO_FTRACE_WORLD,
): number {
  if (!core.policy.hasReliableWalk) {
    klpPrint(
      core,
      'warn',
      "This architecture doesn't have support for the livepatch consistency model.",
    );
    klpPrint(core, 'warn', 'The livepatch transition may never complete.');
  }
  if (!compatible(core, patch)) {
    klpPrint(
      core,
      'err',
      `Livepatch patch (${patch.name}) is not compatible with the already installed livepatches.`,
    );
    return EINVAL;
  }
  if (patch.replace) addNops(core, patch);
  for (const obj of patch.objects) {
    if (!klpIsObjectLoaded(core, obj)) continue;
    const ret = klpInitObjectLoaded(core, obj);
    if (ret !== 0) return ret;
  }
  core.patches.push(patch);
  if (core.transitionPatch !== null) {
    core.patches.pop();
    return EBUSY;
  }
  klpPrint(core, 'notice', `enabling patch '${patch.name}'`);
  klpInitTransition(core, patch, KLP_TRANSITION_PATCHED);
  for (const obj of patch.objects) {
    if (!klpIsObjectLoaded(core, obj)) continue;
    let ret = klpPrePatchCallback(core, obj);
    if (ret !== 0) {
      klpPrint(core, 'warn', `pre-patch callback failed for object '${objName(obj)}'`);
    } else {
      ret = klpPatchObject(core, obj, world);
      if (ret !== 0) klpPrint(core, 'warn', `failed to patch object '${objName(obj)}'`);
    }
    if (ret !== 0) {
      klpPrint(core, 'warn', `failed to enable patch '${patch.name}'`);
      klpCancelTransition(core);
      return ret;
    }
  }
  klpStartTransition(core);
  patch.enabled = true;
  return 0;
}

/**
 * Writing `enabled` (`enabled_store`): the same value is -EINVAL; during
 * this patch's own transition either value reverses it; 0 disables any
 * enabled patch (`__klp_disable_patch`: no stack-top rule since atomic
 * replace, and a forced patch too: `forced` only pins its module), -EBUSY
 * while another transition runs; 1 on a disabled patch is -EINVAL. The
 * caller runs the first attempt of a disable, as the kernel does inside it.
 */
export function klpEnabledStore(core: KlpCore, patch: KlpPatch, enabled: boolean): number {
  if (patch.enabled === enabled) return EINVAL;
  if (patch === core.transitionPatch) {
    klpReverseTransition(core);
    return 0;
  }
  if (enabled) return EINVAL;
  if (core.transitionPatch !== null) return EBUSY;
  klpInitTransition(core, patch, KLP_TRANSITION_UNPATCHED);
  for (const obj of patch.objects) if (obj.patched) klpPreUnpatchCallback(core, obj);
  klpStartTransition(core);
  patch.enabled = false;
  return 0;
}

/** Writing `force` (`force_store`): only during this patch's transition, else -EINVAL. */
export function klpForceStore(core: KlpCore, patch: KlpPatch): number {
  if (patch !== core.transitionPatch) return EINVAL;
  klpForceTransition(core);
  return 0;
}

/**
 * `klp_module_coming`: every patch with an object for the loading module
 * resolves it, runs its pre-patch callback and patches it (its funcs are
 * in transition if the patch is the one in transition, so the ftrace
 * handler picks per task); the post-patch callback runs unless that patch
 * is in transition. Any failure refuses the module (the loader gets the
 * -errno) after reverting what earlier patches did to it.
 */
export function klpModuleComing(
  core: KlpCore,
  module: string,
  world: FtraceWorld = NO_FTRACE_WORLD,
): number {
  const done: KlpObject[] = [];
  for (const patch of core.patches) {
    const obj = patch.objects.find((o) => o.name === module);
    if (obj === undefined) continue;
    let ret = klpInitObjectLoaded(core, obj);
    if (ret !== 0) {
      klpPrint(
        core,
        'warn',
        `failed to initialize patch '${patch.name}' for module '${module}' (${ret})`,
      );
    } else {
      klpPrint(core, 'notice', `applying patch '${patch.name}' to loading module '${module}'`);
      ret = klpPrePatchCallback(core, obj);
      if (ret !== 0) {
        klpPrint(core, 'warn', `pre-patch callback failed for object '${module}'`);
      } else {
        ret = klpPatchObject(core, obj, world);
        if (ret !== 0) {
          klpPrint(
            core,
            'warn',
            `failed to apply patch '${patch.name}' to module '${module}' (${ret})`,
          );
          klpPostUnpatchCallback(core, obj);
        }
      }
    }
    if (ret !== 0) {
      klpPrint(
        core,
        'warn',
        `patch '${patch.name}' failed for module '${module}', refusing to load module '${module}'`,
      );
      for (const d of done) revertObject(core, d);
      for (const f of obj.funcs) f.oldFunc = Number.NaN;
      return ret;
    }
    if (patch !== core.transitionPatch) klpPostPatchCallback(core, obj);
    done.push(obj);
  }
  return 0;
}

/** `klp_module_going`: every patch's object for the module is reverted and forgets its addresses. */
export function klpModuleGoing(core: KlpCore, module: string): void {
  for (const patch of core.patches) {
    const obj = patch.objects.find((o) => o.name === module);
    if (obj !== undefined) revertObject(core, obj);
  }
}

/** One step of `klp_cleanup_module_patches_limited`. */
function revertObject(core: KlpCore, obj: KlpObject): void {
  if (obj.patch !== core.transitionPatch) klpPreUnpatchCallback(core, obj);
  klpPrint(
    core,
    'notice',
    `reverting patch '${obj.patch.name}' on unloading module '${objName(obj)}'`,
  );
  unpatchObject(core, obj);
  klpPostUnpatchCallback(core, obj);
  for (const f of obj.funcs) f.oldFunc = Number.NaN;
}

export { KLP_TRANSITION_UNPATCHED };
