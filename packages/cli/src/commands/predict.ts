import { predictTransition } from '@klpsim/livepatch';
import { POLICY_NAMES } from '@klpsim/unwind';
import { z } from 'zod';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import {
  type CommandDef,
  JSON_FLAG,
  oneOf,
  parseCommand,
  TEXT_FLAG,
  UsageError,
  type ValueDef,
} from '../flags.js';
import { predictReport } from '../html/livepatch.js';
import { renderPage } from '../html/page.js';
import { checkOutputPath, writeFileAtomic } from '../html/write.js';
import { choosePolicy, openCapture } from '../select.js';

/** A function to patch: `name`, or `module:name` for a module's. */
const FUNCTION_LIST: ValueDef<string[]> = {
  schema: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== ''),
    )
    .pipe(
      z
        .array(z.string().regex(/^([A-Za-z0-9_.-]+:)?[A-Za-z_.$][A-Za-z0-9_.$]*$/))
        .min(1)
        .max(10_000),
    ),
  expected: 'one or more function names, comma-separated (module:function for a module)',
};

export const PREDICT_COMMAND = {
  name: 'predict',
  args: '<capture.json>',
  positionals: [1, 1],
  summary: 'which tasks a patch would let switch right now',
  description:
    'One klp_try_complete_transition pass over a real capture, as if a patch of these functions were\n' +
    'enabled now (--unpatch: as if the applied patch were being disabled): for each task, switches,\n' +
    'sleeping on function X, unreliable stack (with the reason), or running. Exit code 1 if the\n' +
    'kernel would refuse the patch (its messages say why).',
  flags: {
    patch: {
      type: 'string',
      arg: 'LIST',
      value: FUNCTION_LIST,
      help: "the patched functions (required): f1,f2 or module:f for a module's",
    },
    unpatch: { type: 'boolean', help: 'as if the applied patch were being disabled' },
    policy: {
      type: 'string',
      arg: 'P',
      value: oneOf(POLICY_NAMES),
      help: 'the policy; default: mainline where the kernel has meta records, else symcode-v8',
    },
    text: TEXT_FLAG,
    html: {
      type: 'string',
      arg: 'FILE',
      help: 'also a page: each task that would not switch, its walked stack, the blocking frame marked',
    },
    json: JSON_FLAG,
  },
} as const satisfies CommandDef;

/** `klpsim predict`: returns the exit code. */
export function runPredict(argv: string[], ctx: CommandContext): number {
  const { flags: values, positionals } = parseCommand(PREDICT_COMMAND, argv);
  const { log, print } = ctx;
  if (values.patch === undefined)
    throw new UsageError('predict', `--patch is required: ${FUNCTION_LIST.expected}`);
  const names = values.patch;
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
