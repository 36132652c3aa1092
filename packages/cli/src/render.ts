import type { OracleComparison, WalkResult } from '@klpsim/unwind';

/**
 * Text for people, shaped like a kernel backtrace:
 *     [<ffff800008baedb8>] __switch_to+0xe8/0x120 (T)
 */

export function renderWalk(
  r: WalkResult,
  kthread: boolean,
  state: string,
  cmp: OracleComparison | null,
): string {
  const lines: string[] = [];
  const who = `${r.comm} (pid ${r.pid}, ${state}, ${kthread ? 'kthread' : 'user'})`;
  const n = r.trace.length;
  if (r.walk === 'reliable') {
    const verdict = r.reliable
      ? `reliable, ${n} entries`
      : `UNRELIABLE (-EINVAL) after ${n} entries: ${r.reason?.code ?? 'unknown'}`;
    lines.push(`${who}: ${verdict}`);
  } else {
    lines.push(
      `${who}: debug walk, ${n} entries${r.reason !== null ? `, stopped early: ${r.reason.code}` : ''}`,
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
      parts.push(`verdict ${cmp.verdictMatches ? 'matches' : 'DIFFERS'}`);
    if (cmp.traceMatches !== null) parts.push(`entries ${cmp.traceMatches ? 'match' : 'DIFFER'}`);
    lines.push(`  kernel's own ${cmp.against}: ${parts.join(', ')}`);
    if (cmp.kernelTrace !== null) for (const l of cmp.kernelTrace) lines.push(`    kernel: ${l}`);
  }
  return lines.join('\n');
}
