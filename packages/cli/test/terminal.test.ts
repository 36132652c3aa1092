import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ANSI, PLAIN, paintFor } from '../src/colour.js';
import { prettyLine } from '../src/log.js';
import { createProgress } from '../src/progress.js';

// The built command (turbo builds the package before its tests), run as a user runs it.
const BIN = fileURLToPath(new URL('../bin/klpsim.js', import.meta.url));

describe('a closed pipe ends the command quietly, as cat does', () => {
  // The output (hundreds of KiB) outgrows the pipe's buffer, so klpsim is
  // still writing when head has its bytes and exits.
  it.each([
    ['--verbose', '--json'],
    ['transition', '--json'],
  ])(
    'klpsim %s %s | head -c 100: exit 0, nothing on stderr (was EPIPE and a stack trace)',
    (...args) => {
      const r = spawnSync(
        'bash',
        [
          '-c',
          `"$0" "$1" ${args.join(' ')} | head -c 100 >/dev/null; echo "exit \${PIPESTATUS[0]}"`,
          process.execPath,
          BIN,
        ],
        { encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('exit 0\n');
    },
  );
});

describe('colour only on a TTY, never in files, NO_COLOR respected', () => {
  it('chooses the paint from the stream and the environment', () => {
    expect(paintFor({ isTTY: true }, {})).toBe(ANSI);
    expect(paintFor({ isTTY: false }, {})).toBe(PLAIN);
    expect(paintFor({}, {})).toBe(PLAIN);
    expect(paintFor({ isTTY: true }, { NO_COLOR: '1' })).toBe(PLAIN);
    // no-color.org: an empty NO_COLOR does not count.
    expect(paintFor({ isTTY: true }, { NO_COLOR: '' })).toBe(ANSI);
  });

  it('output to a pipe or file has no escape sequence', () => {
    const r = spawnSync(process.execPath, [BIN, 'walk', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape is what we look for
    expect(r.stdout).not.toMatch(/\u001b/);
  });
});

describe('progress bar: stderr, TTY only', () => {
  it('draws on a TTY, erases when done, and writes nothing elsewhere', () => {
    const out: string[] = [];
    let t = 0;
    const tty = { isTTY: true, write: (s: string) => out.push(s) > 0 };
    const p = createProgress('bench walk', tty, () => t);
    p.update(0.5);
    t += 50;
    p.update(0.6); // within 100 ms of the last draw: not redrawn
    t += 100;
    p.update(1);
    p.done();
    expect(out).toEqual([
      `\rbench walk [${'#'.repeat(15)}${'.'.repeat(15)}]  50%`,
      `\rbench walk [${'#'.repeat(30)}] 100%`,
      '\r\u001b[2K',
    ]);
    const pipe: string[] = [];
    const q = createProgress(
      'x',
      { isTTY: false, write: (s: string) => pipe.push(s) > 0 },
      () => 0,
    );
    q.update(0.5);
    q.done();
    expect(pipe).toEqual([]);
  });
});

describe('diagnostics: pino NDJSON on stderr, one short line on a TTY', () => {
  it('--log-level debug writes NDJSON to stderr, stdout stays the result', () => {
    const r = spawnSync(process.execPath, [BIN, '--version', '--log-level', 'debug'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^klpsim /);
    for (const line of r.stderr.split('\n').filter((l) => l !== ''))
      expect(() => JSON.parse(line)).not.toThrow();
  });

  it('the pretty form of a pino line', () => {
    expect(prettyLine('{"level":20,"time":1,"file":"a.json","ms":12,"msg":"capture loaded"}')).toBe(
      'debug: capture loaded file=a.json ms=12\n',
    );
  });
});
