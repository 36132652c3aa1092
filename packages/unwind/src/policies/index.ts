import { fpValidate } from './fp-validate.js';
import { linux61 } from './linux-6.1.js';
import { linux66 } from './linux-6.6.js';
import { mainline } from './mainline.js';
import type { Policy } from './policy.js';
import { sframeRegs } from './sframe-regs.js';
import { symcodeV8 } from './symcode-v8.js';

export type { Policy, PolicyMismatch, UnwindRules } from './policy.js';

/**
 * The policy index: every policy by its name. Adding a policy is adding its
 * file and its line here; names, flags and schemas follow from this table.
 */
export const POLICIES = {
  mainline,
  'linux-6.1': linux61,
  'linux-6.6': linux66,
  'symcode-v8': symcodeV8,
  'sframe-regs': sframeRegs,
  'fp-validate': fpValidate,
} as const satisfies Readonly<Record<string, Policy>>;

export type PolicyName = keyof typeof POLICIES;

/** Every policy name, in the index's order. */
export const POLICY_NAMES = Object.keys(POLICIES) as [PolicyName, ...PolicyName[]];

/** The policy called `name`, or undefined. */
export function policyByName(name: string): Policy | undefined {
  return (POLICIES as Record<string, Policy>)[name];
}
