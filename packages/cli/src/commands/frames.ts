import { formatAddr } from '@klpsim/arm64';
import {
  analyseKernelFunction,
  type FrameCoverage,
  type FrameRange,
  type FunctionFrames,
  formatCfa,
  frameCoverage,
  frameRanges,
  kernelFunctions,
  REFUSAL_REASONS,
  type RefusalReason,
} from '@klpsim/frames';
import type { Machine } from '@klpsim/kernel';
import { z } from 'zod';
import type { CommandContext } from '../context.js';
import { EXIT_OK } from '../errors.js';
import {
  type CommandDef,
  helpText,
  JSON_FLAG,
  parseCommand,
  TEXT_FLAG,
  UsageError,
  type ValueDef,
} from '../flags.js';
import { openCapture } from '../select.js';

/** A kallsyms name: what `--function` accepts. */
const FUNCTION_NAME: ValueDef<string> = {
  schema: z
    .string()
    .max(512)
    .regex(/^[A-Za-z_.$][A-Za-z0-9_.$]*$/),
  expected: 'a function name as kallsyms spells it (at most 512 characters)',
};

export const FRAMES_COMMAND = {
  name: 'frames',
  args: '<capture.json>',
  positionals: [1, 1],
  summary: 'frame state (L/S/F, CFA, saved record) of every instruction of a kernel',
  description:
    "The frame state before every instruction of the capture's text, from the instructions\n" +
    'themselves (docs/frames.md): L (return address only in LR), S (record pushed, x29 not at it),\n' +
    'F (x29 at the record), the CFA as sp+N or x29+N, where x29/x30 were saved and whether LR is\n' +
    'PAC-signed. Printed as ranges per function, then the coverage: functions modelled,\n' +
    'instructions classified, functions refused and why.',
  flags: {
    function: {
      type: 'string',
      arg: 'NAME',
      value: FUNCTION_NAME,
      help: 'only this function (every function of that name)',
    },
    summary: { type: 'boolean', help: 'the coverage only, no ranges' },
    text: TEXT_FLAG,
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

/** `klpsim frames`: returns the exit code. */
export function runFrames(argv: string[], ctx: CommandContext): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    ctx.print(helpText(FRAMES_COMMAND));
    return EXIT_OK;
  }
  const { flags, positionals } = parseCommand(FRAMES_COMMAND, argv);
  const file = positionals[0]!;
  const { machine } = openCapture(file, flags.text);
  let bounds = kernelFunctions(machine);
  if (flags.function !== undefined) {
    const name = flags.function;
    bounds = bounds.filter((f) => f.name === name);
    if (bounds.length === 0)
      throw new UsageError('frames', `--function ${name}: no function of that name in ${file}`);
  }
  const functions = bounds.map((f) => analyseKernelFunction(machine, f));
  ctx.log.debug({ functions: functions.length }, 'analysed');
  const coverage = frameCoverage(functions);
  const showRanges = flags.summary !== true;
  if (flags.json === true) printJson(ctx, machine, file, functions, coverage, showRanges);
  else printText(ctx, machine, file, functions, coverage, showRanges);
  return EXIT_OK;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function rangeJson(f: FunctionFrames, r: FrameRange): object {
  const where = { start: formatAddr(f.start + r.start), end: formatAddr(f.start + r.end) };
  if (r.row === null) return { ...where, state: 'none' };
  return {
    ...where,
    state: r.row.state,
    cfa: formatCfa(r.row.cfa),
    record: r.row.record === null ? null : { x29: r.row.record.fp, x30: r.row.record.lr },
    lrSigned: r.row.lrSigned,
  };
}

function functionJson(machine: Machine, f: FunctionFrames, showRanges: boolean): object {
  const hit = machine.kallsyms.lookup(f.start);
  return {
    name: f.name,
    ...(hit?.module != null ? { module: hit.module } : {}),
    start: formatAddr(f.start),
    end: formatAddr(f.start + f.size),
    ...(f.refusal !== null
      ? {
          refused: {
            reason: f.refusal.reason,
            at: hex(f.refusal.offset),
            detail: f.refusal.detail,
          },
        }
      : {
          noreturnCalls: f.noreturnCalls,
          unreached: f.unreached,
          jumpTables: f.jumpTables,
          shrinkWrapped: f.shrinkWrapped,
        }),
    ...(showRanges && f.refusal === null
      ? { ranges: frameRanges(f).map((r) => rangeJson(f, r)) }
      : {}),
  };
}

/** One JSON document, a function per line so that a whole kernel never becomes one string. */
function printJson(
  ctx: CommandContext,
  machine: Machine,
  file: string,
  functions: readonly FunctionFrames[],
  coverage: FrameCoverage,
  showRanges: boolean,
): void {
  const head = { capture: file, release: machine.config.release, coverage };
  ctx.print(`${JSON.stringify(head).slice(0, -1)},"functions":[`);
  functions.forEach((f, i) => {
    const sep = i < functions.length - 1 ? ',' : '';
    ctx.print(`${JSON.stringify(functionJson(machine, f, showRanges))}${sep}`);
  });
  ctx.print(']}');
}

function rangeText(r: FrameRange): string {
  const at = `+${hex(r.start)}..+${hex(r.end)}`.padEnd(20);
  if (r.row === null) return `  ${at} none  (no path reaches it)`;
  const rec =
    r.row.record === null ? '' : `  x29 at CFA${r.row.record.fp}, x30 at CFA${r.row.record.lr}`;
  return `  ${at} ${r.row.state}     CFA=${formatCfa(r.row.cfa).padEnd(8)}${r.row.lrSigned ? ' LR signed' : ' LR plain '}${rec}`;
}

function printText(
  ctx: CommandContext,
  machine: Machine,
  file: string,
  functions: readonly FunctionFrames[],
  coverage: FrameCoverage,
  showRanges: boolean,
): void {
  const { print, paint } = ctx;
  if (showRanges) {
    for (const f of functions) {
      const head = `${f.name} ${formatAddr(f.start)} (${hex(f.size)} bytes)`;
      if (f.refusal !== null) {
        const at =
          f.refusal.offset > 0 || f.refusal.detail !== '' ? ` at +${hex(f.refusal.offset)}` : '';
        print(
          `${paint.strong(head)}: refused, ${f.refusal.reason}${at}${f.refusal.detail !== '' ? `: ${f.refusal.detail}` : ''}`,
        );
        continue;
      }
      const notes = [
        f.noreturnCalls > 0 ? `${f.noreturnCalls} call(s) that do not return` : '',
        f.unreached > 0 ? `${f.unreached} instruction(s) no path reaches` : '',
        f.jumpTables > 0 ? `${f.jumpTables} jump table(s) with unknown targets` : '',
      ].filter((s) => s !== '');
      print(`${paint.strong(head)}${notes.length > 0 ? `: ${notes.join(', ')}` : ''}`);
      for (const r of frameRanges(f)) print(rangeText(r));
    }
    print('');
  }
  for (const line of coverageText(machine, file, coverage)) print(line);
}

/** The coverage summary as the text output ends with it. */
export function coverageText(machine: Machine, file: string, c: FrameCoverage): string[] {
  const pct = (a: number, b: number) => (b === 0 ? '0' : ((100 * a) / b).toFixed(1));
  const ins = c.instructions;
  const lines = [
    `${file} (Linux ${machine.config.release}): frame state per instruction`,
    `  functions        ${c.functions}: ${c.modelled} modelled (${pct(c.modelled, c.functions)}%), ${c.refused} refused`,
    `  instructions     ${ins.total} in modelled functions: ${ins.classified} classified (${pct(ins.classified, ins.total)}%): L ${ins.L}, S ${ins.S}, F ${ins.F}; ${ins.unreached} reached by no path`,
    `  noreturn calls   ${c.noreturnCalls} (found from the frame rules)`,
    `  jump tables      in ${c.functionsWithJumpTables} functions: their targets (in .rodata, not captured) keep no state`,
    `  shrink-wrapped   ${c.shrinkWrapped.functions} functions run body code with no frame before their prologue (${c.shrinkWrapped.over100} more than 100 instructions)`,
  ];
  const refused = (Object.entries(c.refusedBy) as [RefusalReason, number][])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  if (refused.length > 0) lines.push('  refused by reason');
  for (const [reason, n] of refused)
    lines.push(`    ${String(n).padStart(6)}  ${reason}: ${REFUSAL_REASONS[reason]}`);
  return lines;
}
