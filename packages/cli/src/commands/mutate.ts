import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type MutateReport, mutateVectors } from '@klpsim/vectors';
import { CliError } from '../errors.js';
import type { Logger } from '../log.js';

const MAX_COUNT = 100_000_000;

function wholeNumber(name: string, s: string | undefined, min: number, max: number): number {
  const n = Number(s);
  if (s === undefined || !/^\d+$/.test(s) || n < min || n > max)
    throw new CliError(
      'KLPSIM_USAGE',
      `--${name}: expected a whole number from ${min} to ${max}, got "${s ?? ''}"`,
    );
  return n;
}

/** `klpsim vectors mutate <vector|dir> --count N --seed S [--workers W] [--save DIR] [--json]`. */
export async function runMutate(
  argv: string[],
  log: Logger,
  print: (s: string) => void,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      count: { type: 'string' },
      seed: { type: 'string' },
      workers: { type: 'string' },
      save: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length === 0)
    throw new CliError('KLPSIM_USAGE', 'vectors mutate: name a vector file or a folder of vectors');
  const count = wholeNumber('count', values.count, 1, MAX_COUNT);
  const seed = wholeNumber('seed', values.seed, 0, 0xffffffff);
  const workers =
    values.workers === undefined ? undefined : wholeNumber('workers', values.workers, 0, 64);
  const tty = process.stderr.isTTY === true;
  const t0 = performance.now();
  const r = await mutateVectors(positionals, {
    count,
    seed,
    ...(workers !== undefined ? { workers } : {}),
    ...(tty
      ? {
          onProgress: (done: number) =>
            process.stderr.write(`\r${bar(done / count)} ${done}/${count}`),
        }
      : {}),
  });
  if (tty) process.stderr.write('\r\x1b[K');
  if (!r.ok) throw CliError.fromInput(r.error);
  const seconds = (performance.now() - t0) / 1000;
  const report = r.value;
  log.info({ stacks: report.stacks, seconds }, 'mutation run');
  // Figures that depend on the machine go to stderr: stdout is the same bytes for the same count and seed.
  process.stderr.write(
    `${report.stacks} mutated stacks in ${seconds.toFixed(1)} s (${Math.round(report.stacks / seconds)} stacks/s)\n`,
  );
  if (report.failures.length > 0) {
    const dir = values.save ?? 'klpsim-mutations';
    mkdirSync(dir, { recursive: true });
    for (const f of report.failures) {
      const file = join(dir, `${f.asVector.id.replace(/\//g, '-')}.json`);
      writeFileSync(file, `${JSON.stringify(f.asVector, null, 1)}\n`);
    }
    process.stderr.write(`saved ${report.failures.length} failing stacks as vectors in ${dir}/\n`);
  }
  if (values.json === true) {
    const { failures, ...rest } = report;
    print(
      JSON.stringify({ ...rest, failures: failures.map(({ asVector: _, ...f }) => f) }, null, 2),
    );
  } else printReport(report, print);
  const unsound = report.sets.reduce((a, s) => a + s.unsound, 0);
  return unsound === 0 && report.differ === 0 ? 0 : 1;
}

function bar(f: number): string {
  const n = Math.round(f * 30);
  return `[${'#'.repeat(n)}${'.'.repeat(30 - n)}]`;
}

function printReport(r: MutateReport, print: (s: string) => void): void {
  print(
    `${r.stacks} mutated stacks from ${r.bases} recipe stacks (seed ${r.seed}); ${r.validChains} still describe a valid chain`,
  );
  print(
    'policy and checks                          walks  reliable  unsound  valid chains rejected',
  );
  for (const s of r.sets) {
    const name = `${s.policy}${s.checks.map((c) => ` +${c}`).join('')}`;
    print(
      `${name.padEnd(42)} ${String(s.walks).padStart(6)} ${String(s.reliable).padStart(9)} ${String(s.unsound).padStart(8)} ${String(s.rejectedValid).padStart(22)}`,
    );
  }
  print(`fast path and reference walk differ: ${r.differ}`);
  const kinds = Object.entries(r.unsoundKinds).filter(([, n]) => n > 0);
  if (kinds.length > 0)
    print(`unsound verdicts by mutation: ${kinds.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  for (const f of r.failures.slice(0, 10))
    print(`  #${f.iteration} ${f.vector} pid ${f.pid} ${f.kind}: ${f.problem}`);
}
