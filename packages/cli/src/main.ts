import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { bundledCaptures } from './bundled.js';
import { paintFor } from './colour.js';
import type { CommandContext } from './context.js';
import { CliError, EXIT_CODES, EXIT_OK, EXIT_USAGE } from './errors.js';
import type { CommandDef } from './flags.js';
import { createLogger, LOG_LEVELS } from './log.js';
import { asUsageError, choicesText, helpText, UsageError } from './usage.js';

/*
 * Start-up cost is the point of this module's shape: it imports no command,
 * no validator and no logger library, so `klpsim --version` and `--help`
 * load nothing they do not print (docs/performance.md, "Start-up"). A
 * command's module, and with it the simulator and zod, is imported when that
 * command runs or prints its help.
 */

/** What main needs of a command's module. */
export interface Command {
  /** Its definitions, for --help and docs/cli-reference.md; --help shows the one named by its first argument (`bench transition`), else the first. */
  readonly defs: readonly CommandDef[];
  /** The help of a command that parses its own flags (vectors), in place of definitions. */
  readonly usage?: string;
  readonly run: (args: string[], ctx: CommandContext) => number | Promise<number>;
}

/** A table entry: import the command's module when asked, and take what main needs from it. */
const lazy =
  <M>(load: () => Promise<M>, pick: (m: M) => Command) =>
  async (): Promise<Command> =>
    pick(await load());

/**
 * Every command by the word that selects it ('' is the main job), in the
 * order `--help` and docs/cli-reference.md list them. Adding a command is
 * adding its entry here.
 */
export const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  '': lazy(
    () => import('./commands/default.js'),
    (m) => ({ defs: [m.MAIN_COMMAND], run: m.runDefault }),
  ),
  walk: lazy(
    () => import('./commands/walk.js'),
    (m) => ({ defs: [m.WALK_COMMAND], run: m.runWalk }),
  ),
  transition: lazy(
    () => import('./commands/transition.js'),
    (m) => ({ defs: [m.TRANSITION_COMMAND], run: m.runTransition }),
  ),
  predict: lazy(
    () => import('./commands/predict.js'),
    (m) => ({ defs: [m.PREDICT_COMMAND], run: m.runPredict }),
  ),
  // `bench start` has a module of its own: it times the other commands, and loads none of them.
  bench: lazy(
    () => Promise.all([import('./commands/bench.js'), import('./commands/bench-start.js')]),
    ([m, start]) => ({
      defs: [m.BENCH_WALK_COMMAND, m.BENCH_TRANSITION_COMMAND, start.BENCH_START_COMMAND],
      run: (args, ctx) =>
        args[0] === 'start' ? start.runBenchStart(args.slice(1), ctx) : m.runBench(args, ctx),
    }),
  ),
  frames: lazy(
    () => import('./commands/frames.js'),
    (m) => ({ defs: [m.FRAMES_COMMAND], run: m.runFrames }),
  ),
  judge: lazy(
    () => import('./commands/judge.js'),
    (m) => ({ defs: [m.JUDGE_COMMAND], run: m.runJudge }),
  ),
  // vectors parses its own flags for now; its help is its usage text.
  vectors: lazy(
    () => import('./commands/vectors.js'),
    (m) => ({
      defs: [],
      usage: m.VECTORS_USAGE,
      run: (args, ctx) =>
        m.runVectors(args, ctx.log, ctx.print).catch((e: unknown) => {
          throw asUsageError('vectors', e);
        }),
    }),
  ),
};

export const USAGE = `klpsim: the arm64 reliable stack walk and livepatch consistency model, simulated

usage:
  klpsim                        the answer first: kernel agreement on the bundled real captures
                                (6.1, 7.2), the policy table, the built-in livepatch transition
  klpsim walk <capture.json>    walk tasks of a capture under a policy
  klpsim transition [file]      simulate a livepatch transition over time
  klpsim predict <capture>      which tasks a patch would let switch right now
  klpsim bench walk|transition  figures
  klpsim bench start            start-up time of klpsim itself
  klpsim vectors run|new|mutate reliability test vectors (test-vectors/)
  klpsim frames <capture>       frame state (L/S/F, CFA) of every instruction of the kernel's text
  klpsim judge [capture]        every policy judged against the true chain, on tasks interrupted anywhere
  klpsim -V | --version         the version and the bundled kernels'
  klpsim [COMMAND] --help       a command's options

options for every command:
  --log-level LEVEL   diagnostics on stderr as NDJSON (${choicesText(LOG_LEVELS)}; default warn)

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
async function splitLogLevel(
  argv: readonly string[],
): Promise<{ level: string | undefined; rest: string[] }> {
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
  if (level !== undefined) {
    // The validator is loaded only when the flag is given.
    const { oneOf } = await import('./flags.js');
    const def = oneOf(LOG_LEVELS);
    if (!def.schema.safeParse(level).success)
      throw new UsageError('', `--log-level "${level}": expected ${def.expected}`);
  }
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
  // No command word: the main job, which takes the whole line as its flags.
  const mainJob = command === undefined || command.startsWith('-');
  const word = mainJob ? '' : command;
  const load =
    mainJob || (command !== '' && Object.hasOwn(COMMANDS, command)) ? COMMANDS[word] : undefined;
  if (load === undefined) throw new UsageError('', `unknown command "${command}"`);
  const cmd = await load();
  const argv = mainJob ? args : rest;
  if (wantsHelp(argv)) {
    if (cmd.usage !== undefined) return printHelp(ctx, cmd.usage);
    // `klpsim bench transition --help` is that subcommand's; `klpsim bench --help` lists them all.
    const sub = cmd.defs.find((d) => d.name === `${word} ${rest[0]}`);
    return printHelp(ctx, sub !== undefined ? helpText(sub) : cmd.defs.map(helpText).join('\n\n'));
  }
  return await cmd.run(argv, ctx);
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
    const { level, rest } = await splitLogLevel(argv);
    const ctx: CommandContext = {
      log: createLogger(level),
      print,
      paint: paintFor(process.stdout),
    };
    return await dispatch(rest, ctx);
  } catch (e) {
    const error = e instanceof CliError ? e : CliError.fromFault(e);
    if (error !== null) {
      report(error);
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
