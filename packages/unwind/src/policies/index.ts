import { linux61 } from './linux-6.1.js';
import { mainline } from './mainline.js';
import type { Policy, PolicyName } from './policy.js';
import { symcodeV8 } from './symcode-v8.js';

export { POLICY_NAMES, type Policy, type PolicyMismatch, type PolicyName } from './policy.js';

export const POLICIES: Readonly<Record<PolicyName, Policy>> = {
  mainline,
  'linux-6.1': linux61,
  'symcode-v8': symcodeV8,
};

/** The policy called `name`, or undefined. */
export function policyByName(name: string): Policy | undefined {
  return (POLICIES as Record<string, Policy>)[name];
}
