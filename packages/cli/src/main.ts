import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { bundledCaptures } from './bundled.js';
import { paintFor } from './colour.js';
import { BENCH_TRANSITION_COMMAND, BENCH_WALK_COMMAND, runBench } from './commands/bench.js';
import { MAIN_COMMAND, runDefault } from './commands/default.js';
import { FRAMES_COMMAND, runFrames } from './commands/frames.js';
import { PREDICT_COMMAND, runPredict } from './commands/predict.js';
import { runTransition, TRANSITION_COMMAND } from './commands/transition.js';
import { runVectors, VECTORS_USAGE } from './commands/vectors.js';
import { runWalk, WALK_COMMAND } from './commands/walk.js';
import type { CommandContext } from './context.js';
import { CliError, EXIT_CODES, EXIT_OK, EXIT_USAGE } from './errors.js';
import { asUsageError, type CommandDef, helpText, oneOf, UsageError } from './flags.js';
import { createLogger, LOG_LEVELS } from './log.js';

/** Every command, in the order `--help` and docs/cli-reference.md list them. */
export const COMMANDS: readonly CommandDef[] = [
  MAIN_COMMAND,
  WALK_COMMAND,
  TRANSITION_COMMAND,
  PREDICT_COMMAND,
  BENCH_WALK_COMMAND,
  BENCH_TRANSITION_COMMAND,
  FRAMES_COMMAND,
];

/** vectors parses its own flags for now; its help is its usage text. */
export const OWN_USAGE: Readonly<Record<string, string>> = {
  vectors: VECTORS_USAGE,
};

const LOG_LEVEL = oneOf(LOG_LEVELS);

export const USAGE = `klpsim: the arm64 reliable stack walk and livepatch consistency model, simulated

usage:
  klpsim                        the answer first: kernel agreement on the bundled real captures
                                (6.1, 7.2), the policy table, the built-in livepatch transition
  klpsim walk <capture.json>    walk tasks of a capture under a policy
  klpsim transition [file]      simulate a livepatch transition over time
  klpsim predict <capture>      which tasks a patch would let switch right now
  klpsim bench walk|transition  figures
  klpsim vectors run|new|mutate reliability test vectors (test-vectors/)
  klpsim frames <capture>       frame state (L/S/F, CFA) of every instruction of the kernel's text
  klpsim -V | --version         the version and the bundled kernels'
  klpsim [COMMAND] --help       a command's options

options for every command:
  --log-level LEVEL   diagnostics on stderr as NDJSON (${LOG_LEVEL.expected}; default warn)

exit codes:
${EXIT_CODES.map(([c, what]) => `  ${c}  ${what}`).join('\n')}`;

/** The release string near the start of a capture, without parsing its megabytes. */
function captureRelease(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, 0);
    // A gzipped capture: inflate just this first block (a sync flush gives what it holds).
    const head = file.endsWith('.gz')
      ? gunzipSync(buf.subarray(0, n), { finishFlush: zlibConstants.Z_SYNC_FLUSH })
      : buf.subarray(0, n);
    return /"release"\s*:\s*"([^"]+)"/.exec(head.toString('utf8'))?.[1] ?? 'unknown';
  } finally {
    closeSync(fd);
  }
}

/** `klpsim --version`: this package's version, then the kernels of the bundled captures. */
export function versionText(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const caps = bundledCaptures();
  const kernels =
    caps.length === 0
      ? 'bundled captures: none in this installation (they ship with the repository)'
      : `bundled kernels: ${caps.map((f) => `Linux ${captureRelease(f)} (${basename(dirname(f))})`).join(', ')}`;
  return `klpsim ${pkg.version}\n${kernels}`;
}

/** Takes `--log-level L` / `--log-level=L` from anywhere in argv; the rest is the command's. */
function splitLogLevel(argv: readonly string[]): { level: string | undefined; rest: string[] } {
  let level: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--log-level') {
      level = argv[++i];
      if (level === undefined) throw new UsageError('', '--log-level: a value is required');
    } else if (a.startsWith('--log-level=')) level = a.slice('--log-level='.length);
    else rest.push(a);
  }
  if (level !== undefined && !LOG_LEVEL.schema.safeParse(level).success)
    throw new UsageError('', `--log-level "${level}": expected ${LOG_LEVEL.expected}`);
  return { level, rest };
}

const wantsHelp = (args: readonly string[]) => args.includes('--help') || args.includes('-h');

async function dispatch(args: string[], ctx: CommandContext): Promise<number> {
  const [command, ...rest] = args;
  if (command === '--help' || command === '-h' || command === 'help') {
    ctx.print(USAGE);
    return EXIT_OK;
  }
  if (command === '--version' || command === '-V') {
    ctx.print(versionText());
    return EXIT_OK;
  }
  if (command === undefined || command.startsWith('-')) {
    if (wantsHelp(args)) return printHelp(ctx, helpText(MAIN_COMMAND));
    return runDefault(args, ctx);
  }
  if (command === 'frames') return runFrames(rest, ctx);
  if (wantsHelp(rest)) {
    if (command in OWN_USAGE) return printHelp(ctx, OWN_USAGE[command]!);
    const bench = rest[0] === 'transition' ? BENCH_TRANSITION_COMMAND : BENCH_WALK_COMMAND;
    if (command === 'bench') return printHelp(ctx, helpText(bench));
    if (command === 'walk') return printHelp(ctx, helpText(WALK_COMMAND));
    if (command === 'transition') return printHelp(ctx, helpText(TRANSITION_COMMAND));
    if (command === 'predict') return printHelp(ctx, helpText(PREDICT_COMMAND));
  }
  switch (command) {
    case 'walk':
      return runWalk(rest, ctx);
    case 'bench':
      return runBench(rest, ctx);
    case 'transition':
      return await runTransition(rest, ctx);
    case 'predict':
      return runPredict(rest, ctx);
    case 'vectors':
      try {
        return await runVectors(rest, ctx.log, ctx.print);
      } catch (e) {
        throw asUsageError(command, e);
      }
    default:
      throw new UsageError('', `unknown command "${command}"`);
  }
}

function printHelp(ctx: CommandContext, text: string): number {
  ctx.print(text);
  return EXIT_OK;
}

/** One line on stderr; a usage mistake also says where the help is. */
function report(e: CliError): void {
  if (e instanceof UsageError) {
    const who = `klpsim${e.command !== '' ? ` ${e.command}` : ''}`;
    process.stderr.write(`${who}: ${e.message} (see ${who} --help)\n`);
  } else process.stderr.write(`klpsim: ${e.message}\n`);
}

/** Runs the klpsim command line; returns the exit code. Only this package prints. */
export async function main(
  argv: string[],
  print: (s: string) => void = (s) => process.stdout.write(`${s}\n`),
): Promise<number> {
  try {
    const { level, rest } = splitLogLevel(argv);
    const ctx: CommandContext = {
      log: createLogger(level),
      print,
      paint: paintFor(process.stdout),
    };
    return await dispatch(rest, ctx);
  } catch (e) {
    if (e instanceof CliError) {
      report(e);
      return EXIT_USAGE;
    }
    throw e;
  }
}

/**
 * A reader that closes the pipe early (`klpsim | head -2`) has all it
 * wants: end quietly with exit code 0, as cat does, instead of dying on
 * EPIPE with a stack trace.
 */
export function quietOnClosedPipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT_OK);
    throw e;
  });
}
