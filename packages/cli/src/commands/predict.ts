import { parseArgs } from 'node:util';
import { predictTransition } from '@klpsim/livepatch';
import { CliError } from '../errors.js';
import type { Logger } from '../log.js';
import { choosePolicy, openCapture } from '../select.js';

export const PREDICT_USAGE = `klpsim predict <capture.json> --patch f1,f2 [--unpatch] [--policy P] [--text FILE] [--json]

One klp_try_complete_transition pass over a real capture, as if a patch of these
functions were enabled now (--unpatch: as if the applied patch were being disabled):
for each task, switches, sleeping on function X, unreliable stack (with the reason),
or running. Default policy: mainline where the kernel has meta records, else symcode-v8.`;

/** `klpsim predict`: returns the exit code. */
export function runPredict(argv: string[], log: Logger, print: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      patch: { type: 'string' },
      unpatch: { type: 'boolean' },
      policy: { type: 'string' },
      text: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1 || values.patch === undefined) {
    print(PREDICT_USAGE);
    return 2;
  }
  const names = values.patch
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0)
    throw new CliError(
      'KLPSIM_USAGE',
      '--patch: expected one or more function names, comma-separated',
    );
  const { machine } = openCapture(positionals[0]!, values.text);
  const policy = choosePolicy(
    machine,
    values.policy ?? (machine.config.ptRegs.meta !== null ? 'mainline' : 'symcode-v8'),
  );
  const r = predictTransition(
    machine,
    policy,
    { name: 'livepatch_predict', funcs: names.map((oldName) => ({ oldName })) },
    values.unpatch === true,
  );
  if (!r.ok) throw new CliError(r.error.code, `--patch: ${r.error.message}`);
  log.debug({ tasks: r.value.tasks.length }, 'predicted');
  if (values.json === true) {
    print(
      JSON.stringify(
        { policy: r.value.policy, patch: r.value.patch, tasks: r.value.tasks },
        null,
        2,
      ),
    );
    return 0;
  }
  const p = r.value;
  print(
    `${p.patch.unpatch ? 'unpatching' : 'patching'} ${p.patch.functions.join(', ')} under ${p.policy}: first klp_try_complete_transition pass`,
  );
  const counts = new Map<string, number>();
  for (const t of p.tasks) counts.set(t.result, (counts.get(t.result) ?? 0) + 1);
  print(`  ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`);
  for (const t of p.tasks) {
    if (t.result === 'switches') continue;
    const detail =
      t.result === 'sleeping'
        ? `is sleeping on function ${t.function}`
        : t.result === 'running'
          ? 'is running'
          : `has an unreliable stack: ${t.reason?.code ?? ''} ${t.reason?.message ?? ''}`;
    print(`  ${t.comm}:${t.pid} ${detail}`);
  }
  return 0;
}
