import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultScenario, scenarioJsonSchema, scenarioSchema } from '../src/index.js';

describe('the scenario format', () => {
  it('the published JSON Schema is the one the zod schema gives (regenerate: node scripts/gen-schemas.mjs)', () => {
    const published = JSON.parse(
      readFileSync(
        fileURLToPath(new URL('../../../docs/scenario.schema.json', import.meta.url)),
        'utf8',
      ),
    );
    expect(published).toEqual(JSON.parse(JSON.stringify(scenarioJsonSchema())));
  });

  it('the built-in scenario is valid', () => {
    expect(scenarioSchema.safeParse(defaultScenario()).success).toBe(true);
  });

  it('a bad scenario names the field', () => {
    const r = scenarioSchema.safeParse({ machine: { cpus: 0 }, tasks: [] });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(
      expect.arrayContaining(['machine.cpus', 'tasks']),
    );
  });
});
