import { parseArgs } from 'node:util';
import { predictTransition } from '@klpsim/livepatch';
import { CliError } from '../errors.js';
import { predictReport } from '../html/livepatch.js';
import { renderPage } from '../html/page.js';
import { checkOutputPath, writeFileAtomic } from '../html/write.js';
import type { Logger } from '../log.js';
import { choosePolicy, openCapture } from '../select.js';

export const PREDICT_USAGE = `klpsim predict <capture.json> --patch f1,module:f2 [--unpatch] [--policy P] [--text FILE] [--html FILE] [--json]

One klp_try_complete_transition pass over a real capture, as if a patch of these
functions were enabled now (--unpatch: as if the applied patch were being disabled):
for each task, switches, sleeping on function X, unreliable stack (with the reason),
or running. A function of a module is written module:function. Default policy:
mainline where the kernel has meta records, else symcode-v8. Exit code 1 if the
kernel would refuse the patch (its messages say why). --html FILE: also a page with each
task that would not switch and the stack walked, the blocking frame marked.`;

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
      html: { type: 'string' },
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
  if (values.html !== undefined) checkOutputPath(values.html, '--html');
  const { machine } = openCapture(positionals[0]!, values.text);
  const policy = choosePolicy(
    machine,
    values.policy ?? (machine.config.ptRegs.meta !== null ? 'mainline' : 'symcode-v8'),
  );
  const r = predictTransition(
    machine,
    policy,
    {
      name: 'livepatch_predict',
      funcs: names.map((n) => {
        const i = n.indexOf(':');
        return i < 0 ? { oldName: n } : { oldName: n.slice(i + 1), object: n.slice(0, i) };
      }),
    },
    values.unpatch === true,
  );
  if (!r.ok) throw new CliError(r.error.code, `--patch: ${r.error.message}`);
  log.debug({ tasks: r.value.tasks.length }, 'predicted');
  if (values.html !== undefined && r.value.enableResult === 0)
    writeFileAtomic(
      values.html,
      renderPage({ title: `klpsim predict: ${positionals[0]}`, sections: predictReport(r.value) }),
      '--html',
    );
  if (values.json === true) {
    print(
      JSON.stringify(
        {
          policy: r.value.policy,
          patch: r.value.patch,
          enableResult: r.value.enableResult,
          messages: r.value.messages,
          tasks: r.value.tasks,
        },
        null,
        2,
      ),
    );
    return r.value.enableResult === 0 ? 0 : 1;
  }
  const p = r.value;
  if (p.enableResult !== 0) {
    print(`the kernel would refuse this patch (${p.enableResult}):`);
    for (const m of p.messages) print(`  ${m}`);
    return 1;
  }
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
