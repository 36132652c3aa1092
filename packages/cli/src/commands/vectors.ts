import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatInputError } from '@klpsim/kernel';
import { POLICY_NAMES, type PolicyName } from '@klpsim/unwind';
import { loadVectors, newVector, runVector, type VectorOutcome } from '@klpsim/vectors';
import { CliError } from '../errors.js';
import type { Logger } from '../log.js';
import { runMutate } from './mutate.js';

export const VECTORS_USAGE = `klpsim vectors run [paths...] [--policy P] [--json]
klpsim vectors new --recipe FILE --id ID --title T --behaviour B --source S [--tag T]... [--out FILE]
klpsim vectors mutate <vector|dir> --count N --seed S [--workers W] [--save DIR] [--json]

Test vectors (format klpsim-vector/v1, test-vectors/).
  run      walk every vector (default: test-vectors/) through the fast path and the
           reference walk under each expectation's policy; pass or fail with a diff;
           last line "N passed, N failed"; exit 1 on any failure
  new      a vector from a builder recipe, expectations filled from the current
           implementation and marked generated, for a person to review
  mutate   mutated copies of every recipe vector's stacks, each walked under every
           reliable policy and check set and judged by the soundness oracle (a reliable
           walk must be the chain the stack describes); fast path against reference;
           the same output for the same count and seed, whatever --workers (default:
           the cores); failures saved as vectors in --save DIR (default klpsim-mutations);
           exit 1 on any unsound verdict or difference`;

/** `klpsim vectors ...`; returns the exit code. */
export async function runVectors(
  argv: string[],
  log: Logger,
  print: (s: string) => void,
): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'run':
      return vectorsRun(rest, log, print);
    case 'new':
      return vectorsNew(rest, print);
    case 'mutate':
      return runMutate(rest, log, print);
    default:
      print(VECTORS_USAGE);
      return 2;
  }
}

function vectorsRun(argv: string[], log: Logger, print: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { policy: { type: 'string' }, json: { type: 'boolean' } },
  });
  const policy = values.policy;
  if (policy !== undefined && !(POLICY_NAMES as readonly string[]).includes(policy))
    throw new CliError(
      'KLPSIM_USAGE',
      `--policy: unknown policy "${policy}" (expected one of ${POLICY_NAMES.join(', ')})`,
    );
  const loaded = loadVectors(positionals.length > 0 ? positionals : ['test-vectors']);
  if (!loaded.ok) throw CliError.fromInput(loaded.error);
  const t0 = performance.now();
  const outcomes: VectorOutcome[] = loaded.value.vectors.map((v) =>
    runVector(v.vector, v.file, policy === undefined ? {} : { policy: policy as PolicyName }),
  );
  log.debug({ vectors: outcomes.length, ms: Math.round(performance.now() - t0) }, 'vectors run');
  const errors = loaded.value.errors;
  const passed = outcomes.filter((o) => o.passed).length;
  const failed = outcomes.length - passed + errors.length;
  if (values.json === true) {
    print(
      JSON.stringify(
        {
          passed,
          failed,
          vectors: outcomes,
          invalid: errors.map((e) => ({ ...e, text: formatInputError(e) })),
        },
        null,
        2,
      ),
    );
  } else {
    for (const e of errors) print(`FAIL ${formatInputError(e)}`);
    for (const o of outcomes) {
      print(`${o.passed ? 'pass' : 'FAIL'} ${o.id} (${o.file})`);
      for (const f of o.failures) print(`  ${f}`);
    }
    print(`${passed} passed, ${failed} failed`);
  }
  return failed === 0 ? 0 : 1;
}

function vectorsNew(argv: string[], print: (s: string) => void): number {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      recipe: { type: 'string' },
      id: { type: 'string' },
      title: { type: 'string' },
      behaviour: { type: 'string' },
      source: { type: 'string' },
      tag: { type: 'string', multiple: true },
      out: { type: 'string' },
    },
  });
  for (const k of ['recipe', 'id', 'title', 'behaviour', 'source'] as const)
    if (values[k] === undefined)
      throw new CliError('KLPSIM_USAGE', `vectors new: --${k} is required`);
  let recipe: unknown;
  try {
    recipe = JSON.parse(readFileSync(values.recipe!, 'utf8'));
  } catch (e) {
    throw new CliError('KLPSIM_INPUT_INVALID', `${values.recipe}: ${(e as Error).message}`);
  }
  const v = newVector(
    {
      id: values.id!,
      title: values.title!,
      behaviour: values.behaviour!,
      source: values.source!,
      tags: values.tag ?? [],
    },
    recipe as Parameters<typeof newVector>[1],
    values.recipe!,
  );
  if (!v.ok) throw CliError.fromInput(v.error);
  const text = `${JSON.stringify(v.value, null, 2)}\n`;
  if (values.out !== undefined) {
    writeFileSync(values.out, text);
    print(`wrote ${values.out}: expectations generated, marked reviewed: false`);
  } else print(text.trimEnd());
  return 0;
}
