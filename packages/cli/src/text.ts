/** Words and units, the same everywhere the CLI prints. */

/** "1 task", "2 tasks", "1 entry", "3 entries". */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}

/**
 * Seconds, always the same way: three decimals below ten seconds, one
 * below a thousand, whole seconds above, then " s".
 */
export function seconds(x: number): string {
  const digits = x < 10 ? 3 : x < 1000 ? 1 : 0;
  return `${x.toFixed(digits)} s`;
}
