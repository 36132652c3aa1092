import type { z } from 'zod';
import { fail, type InputError, ok, type Result } from './errors.js';

/** `tasks[3].stack.base64` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(document)' : out;
}

/**
 * Validates `data` against `schema`; on failure names the file, the first
 * offending field and what was expected there.
 */
export function validate<T extends z.ZodType>(
  schema: T,
  data: unknown,
  file: string,
): { ok: true; value: z.infer<T> } | { ok: false; error: InputError } {
  const parsed = schema.safeParse(data);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0]!;
  const others = parsed.error.issues.length - 1;
  const more = others > 0 ? ` (and ${others} more problem${others === 1 ? '' : 's'})` : '';
  const expected =
    'expected' in issue && typeof issue.expected === 'string' ? issue.expected : undefined;
  return {
    ok: false,
    error: {
      code: 'KLPSIM_INPUT_INVALID',
      message: `${issue.message}${more}`,
      file,
      field: formatPath(issue.path),
      ...(expected !== undefined && !issue.message.includes(expected) ? { expected } : {}),
    },
  };
}

/** Parses JSON text; the error names the file and says what was expected. */
export function parseJson(text: string, file: string, expected: string): Result<unknown> {
  try {
    return ok(JSON.parse(text) as unknown);
  } catch (e) {
    return fail({
      code: 'KLPSIM_INPUT_INVALID',
      // One line: the parser's message quotes the text, newlines and all.
      message: `not JSON: ${(e as Error).message.replace(/\r?\n/g, '\\n')}`,
      file,
      expected,
    });
  }
}
