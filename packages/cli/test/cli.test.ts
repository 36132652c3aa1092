import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from './run.js';

const CAP61 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-6.1-arm64-plain/capture.json', import.meta.url),
);
const CAP72 = fileURLToPath(
  new URL('../../../fixtures/captures/linux-7.2-arm64-plain/capture.json', import.meta.url),
);

interface Doc {
  policy: string;
  checks: string[];
  tasks: {
    pid: number;
    comm: string;
    reliable: boolean | null;
    error: string | null;
    reason: unknown;
    trace: { address: string; symbol: string; source: string; stack: string | null }[];
  }[];
}

describe('klpsim walk --json', () => {
  it('6.1 under linux-6.1: every task, 476 frames, no verdict', async () => {
    const r = await run('walk', CAP61, '--all', '--policy', 'linux-6.1', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as Doc;
    expect(doc.policy).toBe('linux-6.1');
    expect(doc.tasks).toHaveLength(63);
    expect(doc.tasks.every((t) => t.reliable === null && t.error === null)).toBe(true);
    expect(doc.tasks.reduce((a, t) => a + t.trace.length, 0)).toBe(476);
    expect(doc.tasks[0]!.trace[0]).toEqual({
      address: '0xffff800008baedb8',
      symbol: '__switch_to+0xe8/0x120',
      source: 'T',
      stack: null,
    });
  });

  it('7.2 under mainline with --compare: every verdict and entry agrees with the kernel', async () => {
    const r = await run('walk', CAP72, '--all', '--policy', 'mainline', '--compare', '--json');
    const doc = JSON.parse(r.out) as {
      tasks: (Doc['tasks'][number] & {
        kernel: { traceMatches: boolean; verdictMatches: boolean };
      })[];
    };
    expect(doc.tasks).toHaveLength(71);
    expect(
      doc.tasks.every(
        (t) => t.reliable === true && t.kernel.traceMatches && t.kernel.verdictMatches,
      ),
    ).toBe(true);
  });

  it('--best-effort gives the debug walk', async () => {
    const doc = JSON.parse(
      (await run('walk', CAP72, '--pid', '1', '--best-effort', '--json')).out,
    ) as Doc;
    expect(doc.tasks[0]!.reliable).toBeNull();
    expect(doc.tasks[0]!.trace).toHaveLength(13);
  });

  it('--check call-site passes every return address of both captures', async () => {
    for (const [cap, policy] of [
      [CAP61, 'symcode-v8'],
      [CAP72, 'mainline'],
      [CAP72, 'symcode-v8'],
    ] as const) {
      const doc = JSON.parse(
        (
          await run(
            'walk',
            cap,
            '--policy',
            policy,
            '--check',
            'call-site',
            '--check',
            'start-in-schedule',
            '--json',
          )
        ).out,
      ) as Doc;
      expect(doc.checks).toEqual(['call-site', 'start-in-schedule']);
      for (const t of doc.tasks) expect(t.reason, `${cap} ${t.comm}`).toBeNull();
    }
    const debug = JSON.parse(
      (await run('walk', CAP61, '--policy', 'linux-6.1', '--check', 'call-site', '--json')).out,
    ) as Doc;
    for (const t of debug.tasks) expect(t.reason, t.comm).toBeNull();
  });
});

describe('bad input never crashes', () => {
  it('a missing file: one line naming it, exit 2', async () => {
    const r = await run('walk', '/nonexistent/capture.json');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^klpsim: \/nonexistent\/capture.json: cannot read/);
  });

  it('an invalid capture: the file, the field and what was expected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'klpsim-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({ format: 'arm64-stack-capture/v1', kernel: { release: 7 } }),
    );
    const r = await run('walk', bad);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${bad}: kernel.release:`);
    expect(r.err).toContain('expected string');
    writeFileSync(bad, '{ not json\n');
    const notJson = await run('walk', bad);
    expect(notJson.err).toContain('not JSON');
    // One line, though the parser's message quotes the file's newline.
    expect(notJson.err.trimEnd().split('\n')).toHaveLength(1);
  });

  it('--fail-on-unreliable under a policy with no reliable walk says it has nothing to judge', async () => {
    const r = await run(
      'walk',
      CAP61,
      '--policy',
      'linux-6.6',
      '--fail-on-unreliable',
      '--summary',
    );
    expect(r.code).toBe(0);
    expect(r.err).toContain('policy linux-6.6 has no reliable walk');
  });

  it('a pid the capture does not have: its pids, and how to list them', async () => {
    const r = await run('walk', CAP61, '--pid', '99999');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--pid 99999: no such task in the capture \(pids \d+-\d+, 63 tasks;/);
    expect(r.err).toContain('klpsim walk <capture>');
  });

  it('a scenario that is not JSON, or not there: the file and which', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'klpsim-'));
    const bad = join(dir, 'bad.scenario.json');
    writeFileSync(bad, '{ not json');
    expect((await run('transition', bad)).err).toContain(`${bad}: not JSON`);
    expect((await run('transition', join(dir, 'none.json'))).err).toContain('cannot read');
  });

  it('a text dump that does not match the capture', async () => {
    const r = await run('walk', CAP72, '--text', CAP61);
    expect(r.code).toBe(2);
    expect(r.err).toContain('kernel.textDump.size');
  });

  it('a policy that does not fit the kernel refuses rather than guess', async () => {
    const r = await run('walk', CAP61, '--policy', 'mainline');
    expect(r.code).toBe(2);
    expect(r.err).toContain('meta frame records');
  });

  it('bad arguments', async () => {
    expect((await run('walk', CAP72, '--policy', 'nope')).code).toBe(2);
    expect((await run('walk', CAP72, '--check', 'nope')).code).toBe(2);
    expect((await run('walk', CAP72, '--pid', 'x')).code).toBe(2);
    expect((await run('walk', CAP72, '--pid', '126')).err).toContain('was not captured');
    expect((await run('walk', CAP72, '--frobnicate')).code).toBe(2);
    expect((await run('frobnicate')).code).toBe(2);
  });
});
