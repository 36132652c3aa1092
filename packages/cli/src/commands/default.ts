import { basename, dirname } from 'node:path';
import type { Machine } from '@klpsim/kernel';
import { POLICIES, Walker } from '@klpsim/unwind';
import { bundledCaptures } from '../bundled.js';
import type { Logger } from '../log.js';
import { loadScenario, renderTransition, runScenario } from './transition.js';
import { renderReport, walkCapture } from './walk.js';

/**
 * The main job of a fresh checkout: walk every task of the bundled real
 * captures under the policy that fits each kernel, compare with what the
 * kernel itself recorded, show how every policy judges each capture, then
 * simulate the built-in livepatch transition. Exit code 3 if its
 * consistency checker saw a violation.
 */
export function runDefault(log: Logger, print: (s: string) => void): number {
  const files = bundledCaptures();
  const table: string[] = [];
  for (const file of files) {
    const { report, machine } = walkCapture({ capture: file, compare: true }, log);
    print(`== ${basename(dirname(file))} ==`);
    print(renderReport(report, machine));
    print('');
    table.push(verdictRow(file, machine));
  }
  print('reliable tasks by policy (arch_stack_walk_reliable):');
  print(`  ${'capture'.padEnd(24)}${'mainline'.padEnd(26)}${'symcode-v8'.padEnd(16)}linux-6.1`);
  for (const row of table) print(`  ${row}`);
  print('');
  print('== the built-in livepatch transition (klpsim transition) ==');
  const t = runScenario(loadScenario(null), null, log);
  print(renderTransition(t));
  print('');
  print('See klpsim --help for every command and option.');
  return t.violations.length > 0 ? 3 : 0;
}

function verdictRow(file: string, machine: Machine): string {
  const cell = (name: 'mainline' | 'symcode-v8'): string => {
    const policy = POLICIES[name];
    if (policy.checkLayout(machine) !== null) return 'refuses: no meta records';
    const w = new Walker(machine, policy);
    const ok = machine.tasks.filter((t) => w.walk(t, { reliable: true }) === 0).length;
    return `${ok}/${machine.tasks.length}`;
  };
  return `${basename(dirname(file)).padEnd(24)}${cell('mainline').padEnd(26)}${cell('symcode-v8').padEnd(16)}no reliable walk`;
}
