/**
 * Colour for people at a terminal, never in files or pipes: only when the
 * stream is a TTY and NO_COLOR (no-color.org) is unset or empty.
 */
export interface Paint {
  readonly bad: (s: string) => string;
  readonly good: (s: string) => string;
  readonly strong: (s: string) => string;
  readonly dim: (s: string) => string;
}

const sgr = (code: string) => (s: string) => `\u001b[${code}m${s}\u001b[0m`;

export const PLAIN: Paint = { bad: (s) => s, good: (s) => s, strong: (s) => s, dim: (s) => s };
export const ANSI: Paint = { bad: sgr('31'), good: sgr('32'), strong: sgr('1'), dim: sgr('2') };

/** ANSI on a TTY without NO_COLOR, else plain text. */
export function paintFor(
  stream: { readonly isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
): Paint {
  const noColor = env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '';
  return stream.isTTY === true && !noColor ? ANSI : PLAIN;
}
