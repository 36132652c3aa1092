import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSeed, UsageError } from '../src/flags.js';
import { CAP61, CAP72, run } from './run.js';

/** A usage mistake: exit 2, nothing on stdout, one line on stderr that names the flag and points at --help. */
function expectUsage(r: { code: number; out: string; err: string }, ...parts: string[]) {
  expect(r.code).toBe(2);
  expect(r.out).toBe('');
  expect(r.err.trimEnd().split('\n')).toHaveLength(1);
  for (const p of parts) expect(r.err).toContain(p);
  expect(r.err).toMatch(/\(see klpsim( [a-z ]+)? --help\)\n$/);
}

describe('every number has a bound and a one-line error', () => {
  it('--size 1e20 (was a RangeError with a stack trace)', async () => {
    expectUsage(await run('walk', CAP72, '--size', '1e20'), '--size "1e20"', 'from 1 to 65536');
    expectUsage(await run('walk', CAP72, '--size', '0'), '--size "0"');
    expectUsage(await run('walk', CAP72, '--size', '65537'), '--size "65537"');
  });

  it('--log-level bogus (was pino stack trace), anywhere on the line', async () => {
    expectUsage(await run('--log-level', 'bogus'), '--log-level "bogus"', 'debug');
    expectUsage(await run('walk', CAP72, '--log-level=bogus'), '--log-level "bogus"');
  });

  it('--pid: digits only, below PID_MAX_LIMIT, each once (--pid 1 --pid 1 walked twice)', async () => {
    expectUsage(await run('walk', CAP72, '--pid', 'x'), '--pid "x"');
    expectUsage(await run('walk', CAP72, '--pid', '-1'), '--pid');
    expectUsage(await run('walk', CAP72, '--pid', '4194304'), '--pid "4194304"');
    expectUsage(await run('walk', CAP72, '--pid', '1', '--pid', '1'), '--pid 1 given twice');
  });

  it('a negative value after a space is checked like any value (node said only "ambiguous")', async () => {
    expectUsage(
      await run('bench', 'transition', '--tasks', '-5'),
      '--tasks "-5"',
      'each an integer from 1',
    );
    expectUsage(await run('walk', CAP72, '--size', '-1'), '--size "-1"');
  });

  it('klpsim bench --help lists every benchmark; bench with none names them all', async () => {
    const h = await run('bench', '--help');
    expect(h.code).toBe(0);
    for (const b of ['walk', 'transition', 'start'])
      expect(h.out).toContain(`usage: klpsim bench ${b}`);
    expectUsage(await run('bench'), 'expected walk, transition or start');
  });

  it('a one-valued option given twice is refused (the parser kept the last silently)', async () => {
    expectUsage(
      await run('frames', CAP72, '--function', 'a', '--function', 'b'),
      '--function given twice',
    );
  });

  it('bench walk --depth 100000 is refused before any output (was half a report, then an internal field)', async () => {
    expectUsage(
      await run('bench', 'walk', '--depth', '100000'),
      'klpsim bench walk: --depth "100000"',
    );
    expectUsage(await run('bench', 'walk', '--tasks', '1e9'), '--tasks "1e9"');
    expectUsage(await run('bench', 'walk', '--seconds', '601'), '--seconds "601"');
    expectUsage(await run('bench', 'transition', '--tasks', '1000,x'), '--tasks "1000,x"');
    expectUsage(await run('bench', 'frobnicate'), 'unknown benchmark "frobnicate"');
  });

  it('--seed is an unsigned 32-bit integer: 2^32 would silently be seed 0', () => {
    expect(parseSeed('0')).toBe(0);
    expect(parseSeed('4294967295')).toBe(4294967295);
    for (const bad of ['4294967296', '99999999999999999999', '1e3', '-1', '1.5', '', '0x10'])
      expect(() => parseSeed(bad), bad).toThrow(UsageError);
    expect(() => parseSeed('4294967296')).toThrow(
      '--seed "4294967296": expected an integer from 0 to 4294967295',
    );
  });
});

describe('usage errors: one line, then where the help is', () => {
  it('an unknown option, a missing value, a stray argument, an unknown command', async () => {
    expectUsage(await run('walk', CAP72, '--frobnicate'), "unknown option '--frobnicate'");
    expectUsage(await run('walk', CAP72, '--size'), '--size');
    expectUsage(await run('walk', CAP72, CAP61), 'expected 1 argument');
    expectUsage(await run('walk'), 'expected 1 argument', 'got 0');
    expectUsage(await run('frobnicate'), 'unknown command "frobnicate"');
    expectUsage(await run('--frobnicate'), "unknown option '--frobnicate'");
    expectUsage(await run('walk', CAP72, '--policy', 'nope'), 'one of mainline');
    expectUsage(await run('walk', CAP72, '--check', 'nope'), 'call-site');
  });

  it('transition and predict parse errors are one line too', async () => {
    expectUsage(
      await run('transition', '--frobnicate'),
      "klpsim transition: unknown option '--frobnicate'",
    );
    expectUsage(await run('predict', CAP72, '--frobnicate'), 'klpsim predict:');
  });
});

describe('--help and --version', () => {
  it('every command has its own --help on stdout, exit 0 (walk --help was a parser error)', async () => {
    for (const argv of [
      ['walk', '--help'],
      ['walk', CAP72, '-h'],
      ['bench', 'walk', '--help'],
      ['bench', 'transition', '--help'],
      ['transition', '--help'],
      ['predict', '--help'],
      ['--verbose', '--help'],
    ]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.err).toBe('');
      expect(r.out, argv.join(' ')).toMatch(/klpsim/);
    }
    expect((await run('walk', '--help')).out).toContain('--fail-on-unreliable');
    expect((await run('bench', 'transition', '--help')).out).toMatch(
      /^usage: klpsim bench transition/,
    );
    const top = await run('--help');
    expect(top.out).toContain('exit codes:');
  });

  it('-V and --version: the version and the bundled kernels', async () => {
    for (const flag of ['-V', '--version']) {
      const r = await run(flag);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^klpsim \d+\.\d+\.\d+\n/);
      // The releases the captured kernels reported (uname -r), as recorded in the captures.
      expect(r.out).toContain('Linux 6.1.0-50-cloud-arm64');
      expect(r.out).toContain('Linux 7.2.13+deb14-cloud-arm64');
    }
  });
});

describe('--html: checked before work, written whole or not at all', () => {
  it('an unwritable path is refused first, in one line naming --html', async () => {
    for (const argv of [
      ['walk', CAP72, '--html', '/nonexistent/dir/report.html'],
      ['--html', '/nonexistent/dir/report.html'],
    ]) {
      const r = await run(...argv);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(
        /^klpsim: --html \/nonexistent\/dir\/report\.html: cannot write into \/nonexistent\/dir: ENOENT\n$/,
      );
    }
  });

  it('a report replaces the file atomically, leaving no temporary file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'klpsim-out-'));
    const file = join(dir, 'walk.html');
    writeFileSync(file, 'old');
    expect((await run('walk', CAP72, '--pid', '1', '--summary', '--html', file)).code).toBe(0);
    expect(readdirSync(dir)).toEqual(['walk.html']);
    expect(readFileSync(file, 'utf8')).toMatch(/^<!doctype html>/);
    expect((await run('walk', CAP72, '--html', dir)).err).toContain('is a directory');
    rmSync(dir, { recursive: true, force: true });
  });
});
