import { pino } from 'pino';

/**
 * Diagnostics go to stderr through pino, silent unless asked for
 * (`--log-level debug` or KLPSIM_LOG_LEVEL), so stdout stays the result.
 */
export type Logger = pino.Logger;

export function createLogger(level: string | undefined): Logger {
  return pino(
    { level: level ?? process.env['KLPSIM_LOG_LEVEL'] ?? 'warn', base: null },
    pino.destination(2),
  );
}
