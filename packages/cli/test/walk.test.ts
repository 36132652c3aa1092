import { describe, expect, it } from 'vitest';
import { CAP72, run } from './run.js';

/*
 * Expected verdicts come from the kernel's rules: a reliable walk that fills
 * its buffer fails (kernel/stacktrace.c, stack_trace_consume_entry refuses
 * the entry after the last slot), and init's reliable walk in the 7.2 capture
 * has 13 entries, as that kernel's own arch_stack_walk_reliable recorded.
 */
describe('klpsim walk: summary, filters, verdict exit code', () => {
  it('"1 task, 13 entries": one task is singular', async () => {
    const r = await run('walk', CAP72, '--pid', '1');
    expect(r.out).toContain('init (pid 1, S, user): reliable, 13 entries');
    expect(r.out).toContain('summary: 1 task, 13 entries; 1 reliable, 0 unreliable');
  });

  it('--fail-on-unreliable: exit 1 only when a reliable walk failed', async () => {
    expect((await run('walk', CAP72, '--pid', '1', '--fail-on-unreliable')).code).toBe(0);
    const full = await run('walk', CAP72, '--pid', '1', '--size', '13', '--fail-on-unreliable');
    expect(full.code).toBe(1);
    expect(full.out).toContain('UNRELIABLE (-EINVAL) after 13 entries');
    expect((await run('walk', CAP72, '--pid', '1', '--size', '13')).code).toBe(0);
    const one = await run('walk', CAP72, '--pid', '1', '--size', '1');
    expect(one.out).toContain('after 1 entry:');
  });

  it('--unreliable-only prints only the tasks that failed; --summary only the totals', async () => {
    // With 13 slots, tasks deeper than 12 entries fail and the others pass.
    const all = await run('walk', CAP72, '--size', '13', '--json');
    const doc = JSON.parse(all.out) as { tasks: { pid: number; reliable: boolean }[] };
    const failed = doc.tasks.filter((t) => !t.reliable).map((t) => t.pid);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThan(doc.tasks.length);
    const only = JSON.parse(
      (await run('walk', CAP72, '--size', '13', '--unreliable-only', '--json')).out,
    ) as {
      tasks: { pid: number }[];
    };
    expect(only.tasks.map((t) => t.pid)).toEqual(failed);
    const text = (await run('walk', CAP72, '--size', '13', '--unreliable-only')).out;
    expect(text.match(/UNRELIABLE/g)).toHaveLength(failed.length);
    expect(text).not.toMatch(/: reliable, /);
    const summary = await run('walk', CAP72, '--summary', '--compare');
    expect(summary.out).not.toContain('[<');
    expect(summary.out).toContain(
      'summary: 71 tasks, 532 entries; 71 reliable, 0 unreliable; kernel agreement: 71/71 tasks, 532/532 entries',
    );
    const sj = JSON.parse((await run('walk', CAP72, '--summary', '--json')).out) as {
      tasks?: unknown;
      summary: { tasks: number; entries: number; reliable: number };
    };
    expect(sj.tasks).toBeUndefined();
    expect(sj.summary).toMatchObject({ tasks: 71, entries: 532, reliable: 71 });
  });
});

describe('the main job leads with the answer', () => {
  it('first screen: agreement per capture, the policy table, the transition, next steps', async () => {
    const r = await run();
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    // A first screen: a terminal of 24 rows shows the whole answer.
    expect(lines.length).toBeLessThanOrEqual(24);
    expect(r.out).toMatch(/linux-6\.1-arm64-plain +linux-6\.1 +63\/63 tasks, 476\/476 frames/);
    expect(r.out).toMatch(
      /linux-7\.2-arm64-plain +mainline +71\/71 tasks, 532\/532 frames, 71\/71 verdicts/,
    );
    expect(r.out).toMatch(/linux-7\.2-arm64-plain +71\/71 +71\/71/);
    // The hard capture: the kernel's own 86 verdicts (five -EINVAL) and 694 entries.
    expect(r.out).toMatch(
      /linux-7\.2-arm64-hard +mainline +86\/86 tasks, 694\/694 frames, 86\/86 verdicts/,
    );
    expect(r.out).toContain('consistency violations: 0');
    expect(r.out).toContain('klpsim --verbose');
    expect(r.out).not.toContain('[<');
  });

  it('--verbose adds every trace; --json is one document', async () => {
    const v = await run('--verbose');
    expect(v.out).toContain('kernel agreement: 63/63 tasks, 476/476 entries');
    expect(v.out).toContain(
      '71 reliable, 0 unreliable; kernel agreement: 71/71 tasks, 532/532 entries',
    );
    const doc = JSON.parse((await run('--json')).out) as {
      captures: { kernel: string; agreement: { tasks: number; of: number }; verdicts: unknown }[];
      transition: { completed: boolean; violations: number };
    };
    expect(doc.captures.map((c) => c.kernel)).toEqual([
      '6.1.0-50-cloud-arm64',
      '7.2.13+deb14-cloud-arm64',
      '7.2.13+deb14-cloud-arm64',
    ]);
    expect(doc.captures[1]!.verdicts).toEqual({ matching: 71, of: 71 });
    expect(doc.transition.violations).toBe(0);
  });
});
