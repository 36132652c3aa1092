import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type InputError, parseJson, type Result, validate } from '@klpsim/kernel';
import { fail, ok } from '@klpsim/kernel/internal';
import { type Vector, vectorSchema } from './schema.js';

/** One vector file, read and validated. */
export interface LoadedVector {
  readonly file: string;
  readonly vector: Vector;
}

/** Reads and validates one vector file; the error names the file, the JSON path and what was expected. */
export function loadVectorFile(file: string): Result<LoadedVector> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return fail({
      code: 'KLPSIM_FILE_UNREADABLE',
      message: `cannot read: ${(e as Error).message}`,
      file,
    });
  }
  return parseVector(text, file);
}

/** Parses and validates a vector document given as text. */
export function parseVector(text: string, file: string): Result<LoadedVector> {
  const json = parseJson(text, file, 'a klpsim-vector/v1 JSON document');
  if (!json.ok) return json;
  const v = validate(vectorSchema, json.value, file);
  return v.ok ? ok({ file, vector: v.value }) : v;
}

/** Every `*.json` vector file under the given files and folders, sorted, schema files excluded. */
export function vectorFiles(paths: readonly string[]): Result<string[]> {
  const out: string[] = [];
  const visit = (p: string): InputError | null => {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(p);
    } catch (e) {
      return {
        code: 'KLPSIM_FILE_UNREADABLE',
        message: `cannot read: ${(e as Error).message}`,
        file: p,
      };
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(p).sort()) {
        const sub = join(p, name);
        if (statSync(sub).isDirectory()) {
          const e = visit(sub);
          if (e !== null) return e;
        } else if (name.endsWith('.json') && !name.endsWith('.schema.json')) out.push(sub);
      }
    } else out.push(p);
    return null;
  };
  for (const p of paths) {
    const e = visit(p);
    if (e !== null) return fail(e);
  }
  return ok(out);
}

/** Loads every vector under `paths`: the good ones, and one precise error for each bad one (the rest go on). */
export function loadVectors(paths: readonly string[]): Result<{
  vectors: LoadedVector[];
  errors: InputError[];
}> {
  const files = vectorFiles(paths);
  if (!files.ok) return files;
  const vectors: LoadedVector[] = [];
  const errors: InputError[] = [];
  for (const f of files.value) {
    const r = loadVectorFile(f);
    if (r.ok) vectors.push(r.value);
    else errors.push(r.error);
  }
  return ok({ vectors, errors });
}
