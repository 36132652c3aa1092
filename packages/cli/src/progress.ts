/**
 * A progress bar for work longer than a second, on stderr and only on a
 * TTY: in a pipe, a file or CI it writes nothing, so logs stay clean.
 * Redrawn at most every 100 ms: drawing must not cost what it measures.
 */
export interface Progress {
  /** Sets the fraction done, 0 to 1. */
  update(fraction: number): void;
  /** Erases the bar. */
  done(): void;
}

const WIDTH = 30;
const REDRAW_MS = 100;

interface TtyStream {
  readonly isTTY?: boolean;
  write(s: string): boolean;
}

const SILENT: Progress = { update() {}, done() {} };

/** A bar labelled `label` on `stream` (default stderr), or one that draws nothing off a TTY. */
export function createProgress(
  label: string,
  stream: TtyStream = process.stderr,
  now: () => number = () => performance.now(),
): Progress {
  if (stream.isTTY !== true) return SILENT;
  let last = Number.NEGATIVE_INFINITY;
  let drawn = false;
  return {
    update(fraction) {
      const t = now();
      if (t - last < REDRAW_MS) return;
      last = t;
      const f = Math.min(1, Math.max(0, fraction));
      const full = Math.round(f * WIDTH);
      stream.write(
        `\r${label} [${'#'.repeat(full)}${'.'.repeat(WIDTH - full)}] ${Math.floor(f * 100)
          .toString()
          .padStart(3)}%`,
      );
      drawn = true;
    },
    done() {
      // Erase the line so the result that follows starts clean.
      if (drawn) stream.write('\r\u001b[2K');
      drawn = false;
    },
  };
}
