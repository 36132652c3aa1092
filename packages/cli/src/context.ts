import type { Paint } from './colour.js';
import type { Logger } from './log.js';

/** What a command needs from the outside: where diagnostics and results go, and how to colour them. */
export interface CommandContext {
  readonly log: Logger;
  /** Writes one result line to stdout. */
  readonly print: (s: string) => void;
  readonly paint: Paint;
}
