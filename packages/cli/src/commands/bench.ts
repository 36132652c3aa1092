import type { CommandContext } from '../context.js';
import { UsageError } from '../flags.js';
import { runBenchTransition } from './bench-transition.js';
import { runBenchWalk } from './bench-walk.js';

export { BENCH_TRANSITION_COMMAND } from './bench-transition.js';
export { BENCH_WALK_COMMAND } from './bench-walk.js';

/** `klpsim bench walk` and `klpsim bench transition`: return the exit code. */
export function runBench(argv: string[], ctx: CommandContext): number | Promise<number> {
  const [what, ...rest] = argv;
  if (what === 'walk') return runBenchWalk(rest, ctx);
  if (what === 'transition') return runBenchTransition(rest, ctx);
  throw new UsageError(
    'bench',
    what === undefined
      ? 'expected walk, transition or start'
      : `unknown benchmark "${what}" (expected walk, transition or start)`,
  );
}
