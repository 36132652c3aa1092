import { pino } from 'pino';

/**
 * Diagnostics go to stderr through pino, silent unless asked for
 * (`--log-level debug` or KLPSIM_LOG_LEVEL), so stdout stays the result:
 * NDJSON for machines, and on a TTY one short line per message for people.
 */
export type Logger = pino.Logger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** `debug: capture loaded file=... ms=12` from one pino NDJSON line. */
export function prettyLine(json: string): string {
  const { level, msg, time: _time, ...rest } = JSON.parse(json) as Record<string, unknown>;
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${LEVEL_NAMES[level as number] ?? String(level)}: ${String(msg ?? '')}${fields !== '' ? ` ${fields}` : ''}\n`;
}

/** A logger at `level` (already validated by the caller) writing to stderr. */
export function createLogger(
  level: string | undefined,
  stderr: NodeJS.WriteStream = process.stderr,
): Logger {
  const chosen = level ?? process.env['KLPSIM_LOG_LEVEL'] ?? 'warn';
  // An invalid KLPSIM_LOG_LEVEL is ignored rather than fatal: the environment is not the command line.
  const safe = (LOG_LEVELS as readonly string[]).includes(chosen) ? chosen : 'warn';
  const destination =
    stderr.isTTY === true
      ? { write: (line: string) => stderr.write(prettyLine(line)) }
      : pino.destination(2);
  return pino({ level: safe, base: null }, destination);
}
