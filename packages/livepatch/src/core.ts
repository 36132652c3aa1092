import type { InputError, Result } from '@klpsim/kernel';
import {
  findOldFunc,
  KLP_TRANSITION_PATCHED,
  KLP_TRANSITION_UNPATCHED,
  type KlpPatch,
  nopFunc,
} from './model.js';
import {
  EBUSY,
  EINVAL,
  type KlpCore,
  klpForceTransition,
  klpInitTransition,
  klpReverseTransition,
  klpStartTransition,
  patchObject,
  unpatchObject,
} from './transition.js';

/**
 * The sysfs and module-notifier side of livepatch (kernel/livepatch/core.c):
 * enabling a patch, writing `enabled` and `force`, atomic replace, modules
 * coming and going. Each returns 0 or a -errno, as the kernel does.
 */

/** `klp_is_patch_compatible`: a cumulative patch must keep every state an enabled patch set, at no lower version. */
function compatible(core: KlpCore, patch: KlpPatch): boolean {
  for (const old of core.patches) {
    for (const s of old.states) {
      const mine = patch.states.find((x) => x.id === s.id);
      if (
        patch.replace
          ? mine === undefined || mine.version < s.version
          : mine !== undefined && mine.version < s.version
      )
        return false;
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
        obj = { name: oobj.name, funcs: [], patched: false, patch };
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
 * `klp_enable_patch`: refuses while another transition runs (-EBUSY) or an
 * incompatible state; then init, patch every loaded object, start, and the
 * first `klp_try_complete_transition` runs synchronously (by the caller).
 */
export function klpEnablePatch(core: KlpCore, patch: KlpPatch): number {
  if (core.transitionPatch !== null) return EBUSY;
  if (!compatible(core, patch)) return EINVAL;
  if (patch.replace) addNops(core, patch);
  core.observer.message(`enabling patch '${patch.name}'`);
  core.patches.push(patch);
  klpInitTransition(core, patch, KLP_TRANSITION_PATCHED);
  for (const obj of patch.objects)
    if (obj.funcs.every((f) => !Number.isNaN(f.oldFunc))) patchObject(core, obj);
  klpStartTransition(core);
  patch.enabled = true;
  return 0;
}

/**
 * Writing `enabled` (`enabled_store`): the opposite value during this
 * patch's own transition reverses it; 0 on an enabled, idle patch disables
 * it; anything else is -EINVAL (or -EBUSY while another transition runs).
 */
export function klpEnabledStore(core: KlpCore, patch: KlpPatch, enabled: boolean): number {
  if (patch.enabled === enabled) return EINVAL;
  if (patch === core.transitionPatch) {
    klpReverseTransition(core);
    return 0;
  }
  if (enabled) return EINVAL;
  if (core.transitionPatch !== null) return EBUSY;
  // Only the newest patch may be disabled (`klp_is_patch_stack_top` in older kernels, the stack order in newer).
  if (core.patches[core.patches.length - 1] !== patch || patch.forced) return EINVAL;
  klpInitTransition(core, patch, KLP_TRANSITION_UNPATCHED);
  klpStartTransition(core);
  patch.enabled = false;
  return 0;
}

/** Writing `force`: only during this patch's transition. */
export function klpForceStore(core: KlpCore, patch: KlpPatch): number {
  if (patch !== core.transitionPatch) return EINVAL;
  klpForceTransition(core);
  return 0;
}

/**
 * `klp_module_coming`: a loading module's objects of every patch are
 * resolved and patched; their funcs are already in transition if the patch
 * is the one in transition, so the ftrace handler picks per task.
 */
export function klpModuleComing(core: KlpCore, module: string): Result<number, InputError> {
  for (const patch of core.patches) {
    for (const obj of patch.objects) {
      if (obj.name !== module) continue;
      for (const [i, f] of obj.funcs.entries()) {
        const r = findOldFunc(core.machine, f.oldName, f.oldSympos);
        if (r === null) {
          return {
            ok: false,
            error: {
              code: 'KLPSIM_INPUT_INVALID',
              message: `module ${module} has no function ${f.oldName}`,
              field: `${patch.name}.funcs[${i}]`,
            },
          };
        }
        f.oldFunc = r.address;
        f.oldSize = r.size;
      }
      core.observer.message(`applying patch '${patch.name}' to loading module '${module}'`);
      patchObject(core, obj);
    }
  }
  return { ok: true, value: 0 };
}

/** `klp_module_going`: a module's objects are unpatched and forget their addresses. */
export function klpModuleGoing(core: KlpCore, module: string): void {
  for (const patch of core.patches) {
    for (const obj of patch.objects) {
      if (obj.name !== module || !obj.patched) continue;
      core.observer.message(`reverting patch '${patch.name}' on unloading module '${module}'`);
      unpatchObject(core, obj);
      for (const f of obj.funcs) f.oldFunc = Number.NaN;
    }
  }
}
