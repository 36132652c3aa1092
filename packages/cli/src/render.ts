import type { OracleComparison, WalkResult } from '@klpsim/unwind';
import { type Paint, PLAIN } from './colour.js';
import { count } from './text.js';

/**
 * Text for people, shaped like a kernel backtrace:
 *     [<ffff800008baedb8>] __switch_to+0xe8/0x120 (T)
 */

export function renderWalk(
  r: WalkResult,
  kthread: boolean,
  state: string,
  cmp: OracleComparison | null,
  paint: Paint = PLAIN,
): string {
  const lines: string[] = [];
  const who = `${r.comm} (pid ${r.pid}, ${state}, ${kthread ? 'kthread' : 'user'})`;
  const n = r.trace.length;
  if (r.walk === 'reliable') {
    const verdict = r.reliable
      ? paint.good(`reliable, ${count(n, 'entry', 'entries')}`)
      : paint.bad(
          `UNRELIABLE (-EINVAL) after ${count(n, 'entry', 'entries')}: ${r.reason?.code ?? 'unknown'}`,
        );
    lines.push(`${who}: ${verdict}`);
  } else {
    lines.push(
      `${who}: debug walk, ${count(n, 'entry', 'entries')}${r.reason !== null ? `, stopped early: ${r.reason.code}` : ''}`,
    );
  }
  if (r.reason !== null) lines.push(`  reason: ${r.reason.message} (entry ${r.reason.frame})`);
  for (const e of r.trace) {
    const mark = e.source !== '' ? ` (${e.source})` : '';
    lines.push(`  [<${e.address.slice(2)}>] ${e.symbol}${mark}`);
  }
  if (cmp !== null && cmp.against !== null) {
    const parts = [];
    if (cmp.verdictMatches !== null)
      parts.push(cmp.verdictMatches ? 'verdict matches' : paint.bad('verdict DIFFERS'));
    if (cmp.traceMatches !== null)
      parts.push(cmp.traceMatches ? 'entries match' : paint.bad('entries DIFFER'));
    lines.push(`  kernel's own ${cmp.against}: ${parts.join(', ')}`);
    if (cmp.kernelTrace !== null) for (const l of cmp.kernelTrace) lines.push(`    kernel: ${l}`);
  }
  return lines.join('\n');
}
