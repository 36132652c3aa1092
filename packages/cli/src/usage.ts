import { CliError } from './errors.js';
import type { CommandDef, FlagDef } from './flags.js';

/**
 * What a person sees of the command line without anything being parsed:
 * help text from a command's definition and the one-line usage error. It
 * imports no validator (zod lives in flags.ts), so `klpsim --help` and the
 * error paths of main stay cheap to load.
 */

/** A usage mistake: printed as one line that ends by pointing at the command's --help. */
export class UsageError extends CliError {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super('KLPSIM_USAGE', message);
  }
}

/** How a fixed set of names is described in errors and help: `one of a, b, c`. */
export function choicesText(names: readonly string[]): string {
  return `one of ${names.join(', ')}`;
}

/** The first sentence of node's parseArgs error, which otherwise goes on about `--` and quotes. */
function parseArgsMessage(e: Error): string {
  const first = e.message.split(/\.(\s|$)/)[0] ?? e.message;
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/** Rewrites node's parseArgs errors as usage errors; anything else passes through. */
export function asUsageError(command: string, e: unknown): unknown {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
    return new UsageError(command, parseArgsMessage(e as Error));
  return e;
}

/** `klpsim walk <capture.json> [--pid N]...`: the usage line of a command. */
export function usageLine(def: CommandDef): string {
  const parts = [`klpsim${def.name !== '' ? ` ${def.name}` : ''}`];
  if (def.args !== '') parts.push(def.args);
  for (const [name, f] of Object.entries(def.flags)) {
    const arg = f.type === 'string' ? ` ${f.arg ?? 'VALUE'}` : '';
    parts.push(`[--${name}${arg}]${f.multiple === true ? '...' : ''}`);
  }
  return parts.join(' ');
}

/** The flag's bound or choices, for help text. */
function flagHelp(f: FlagDef): string {
  return f.value !== undefined ? `${f.help} (${f.value.expected})` : f.help;
}

/** `klpsim walk --help`. */
export function helpText(def: CommandDef): string {
  const rows = Object.entries(def.flags).map(([name, f]) => {
    const short = f.short !== undefined ? `-${f.short}, ` : '';
    return [`${short}--${name}${f.type === 'string' ? ` ${f.arg ?? 'VALUE'}` : ''}`, flagHelp(f)];
  });
  const width = Math.max(0, ...rows.map(([l]) => l!.length)) + 2;
  return [
    `usage: ${usageLine(def)}`,
    '',
    def.description,
    '',
    'options:',
    ...rows.map(([l, h]) => `  ${l!.padEnd(width)}${h}`),
  ].join('\n');
}

/** The Markdown section of docs/cli-reference.md for one command. */
export function referenceSection(def: CommandDef): string {
  const rows = Object.entries(def.flags).map(([name, f]) => {
    const arg = f.type === 'string' ? ` ${f.arg ?? 'VALUE'}` : '';
    const many = f.multiple === true ? ' (repeatable)' : '';
    return `| \`--${name}${arg}\`${many} | ${flagHelp(f).replaceAll('|', '\\|')} |`;
  });
  return [
    `## \`klpsim${def.name !== '' ? ` ${def.name}` : ''}\``,
    '',
    `\`${usageLine(def)}\``,
    '',
    def.description,
    '',
    '| option | meaning |',
    '|---|---|',
    ...rows,
  ].join('\n');
}
