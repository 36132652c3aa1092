import { readFileSync } from 'node:fs';
import { BENCH_USAGE, runBench } from './commands/bench.js';
import { runDefault } from './commands/default.js';
import { PREDICT_USAGE, runPredict } from './commands/predict.js';
import { runTransition, TRANSITION_USAGE } from './commands/transition.js';
import { runVectors, VECTORS_USAGE } from './commands/vectors.js';
import { runWalk, WALK_USAGE } from './commands/walk.js';
import { CliError, EXIT_OK, EXIT_USAGE } from './errors.js';
import { createLogger } from './log.js';

const USAGE = `klpsim: the arm64 reliable stack walk and livepatch consistency model, simulated

usage:
  klpsim                      walk every task of the bundled real captures (6.1, 7.2),
                              compare with the kernels' own traces and verdicts, then
                              simulate the built-in livepatch transition
  klpsim walk <capture.json>  walk tasks of a capture under a policy
  klpsim transition [file]    simulate a livepatch transition over time
  klpsim predict <capture>    which tasks a patch would let switch right now
  klpsim bench walk|transition  figures
  klpsim vectors run|new|mutate  reliability test vectors (test-vectors/)
  klpsim --version | --help

options for every command: --log-level LEVEL (diagnostics on stderr; default warn)

${WALK_USAGE}

${TRANSITION_USAGE}

${PREDICT_USAGE}

${BENCH_USAGE}

${VECTORS_USAGE}`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** Runs the klpsim command line; returns the exit code. Only this package prints. */
export async function main(
  argv: string[],
  print: (s: string) => void = (s) => process.stdout.write(`${s}\n`),
): Promise<number> {
  let logLevel: string | undefined;
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--log-level') logLevel = argv[++i];
    else args.push(argv[i]!);
  }
  const log = createLogger(logLevel);
  const [command, ...rest] = args;
  try {
    switch (command) {
      case undefined:
        return runDefault(log, print);
      case 'walk':
        return runWalk(rest, log, print);
      case 'bench':
        return runBench(rest, log, print);
      case 'transition':
        return await runTransition(rest, log, print);
      case 'predict':
        return runPredict(rest, log, print);
      case 'vectors':
        return await runVectors(rest, log, print);
      case '--version':
        print(version());
        return EXIT_OK;
      case '--help':
      case '-h':
      case 'help':
        print(USAGE);
        return EXIT_OK;
      default:
        process.stderr.write(`klpsim: unknown command "${command}"\n\n${USAGE}\n`);
        return EXIT_USAGE;
    }
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`klpsim: ${e.message}\n`);
      return EXIT_USAGE;
    }
    // parseArgs reports bad options with an ERR_PARSE_ARGS_* code: the user's mistake, not ours.
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`klpsim: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
}
