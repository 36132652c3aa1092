import { createRequire } from 'node:module';
import type { pino as Pino } from 'pino';

/**
 * Diagnostics go to stderr through pino, silent unless asked for
 * (`--log-level debug` or KLPSIM_LOG_LEVEL), so stdout stays the result:
 * NDJSON for machines, and on a TTY one short line per message for people.
 */
export type Logger = Pino.Logger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The level's number, as pino ranks them: a message is written when its rank is at least the logger's. */
const LEVEL_RANKS: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};

const LEVEL_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(LEVEL_RANKS).map(([name, rank]) => [rank, name]),
);

/** `debug: capture loaded file=... ms=12` from one pino NDJSON line. */
export function prettyLine(json: string): string {
  const { level, msg, time: _time, ...rest } = JSON.parse(json) as Record<string, unknown>;
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${LEVEL_NAMES[level as number] ?? String(level)}: ${String(msg ?? '')}${fields !== '' ? ` ${fields}` : ''}\n`;
}

const noop = () => {};

/**
 * A logger at `level` (already validated by the caller) writing to stderr.
 * pino (about 30 modules, and an fsync of stderr at exit) is loaded only when
 * a message at an enabled level is first written: most runs write none.
 */
export function createLogger(
  level: string | undefined,
  stderr: NodeJS.WriteStream = process.stderr,
): Logger {
  const chosen = level ?? process.env['KLPSIM_LOG_LEVEL'] ?? 'warn';
  // An invalid KLPSIM_LOG_LEVEL is ignored rather than fatal: the environment is not the command line.
  const safe = (LOG_LEVELS as readonly string[]).includes(chosen) ? chosen : 'warn';
  let real: Logger | undefined;
  const open = (): Logger => {
    if (real !== undefined) return real;
    // pino is CommonJS: required synchronously, at the first message that is written.
    const { pino } = createRequire(import.meta.url)('pino') as { pino: typeof Pino };
    const destination =
      stderr.isTTY === true
        ? { write: (line: string) => stderr.write(prettyLine(line)) }
        : pino.destination(2);
    real = pino({ level: safe, base: null }, destination);
    return real;
  };
  const rank = LEVEL_RANKS[safe]!;
  return new Proxy({} as Logger, {
    get(_target, key) {
      const at = typeof key === 'string' ? LEVEL_RANKS[key] : undefined;
      if (at !== undefined && at < rank && real === undefined) return noop;
      const logger = open();
      const v = Reflect.get(logger, key, logger) as unknown;
      return typeof v === 'function' ? v.bind(logger) : v;
    },
  });
}
