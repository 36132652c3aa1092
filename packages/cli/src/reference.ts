import { EXIT_CODES } from './errors.js';
import { COMMANDS } from './main.js';
import { referenceSection } from './usage.js';

// Every command's module, loaded once: the reference describes them all.
const commands = Object.entries(COMMANDS).map(async ([name, load]) => ({
  name,
  ...(await load()),
}));
const loaded = await Promise.all(commands);

/**
 * docs/cli-reference.md, generated from the command definitions so the
 * options are written once (`node scripts/gen-cli-reference.mjs` after a
 * build; a test fails when the file is stale).
 */
export function cliReference(): string {
  const parts = [
    '# klpsim command reference',
    '',
    '<!-- Generated from the command definitions (packages/cli/src/commands/*.ts) by',
    '     scripts/gen-cli-reference.mjs; do not edit by hand. -->',
    '',
    'Run from the repository root as `./klpsim`, or as `klpsim` once the `@klpsim/cli`',
    'package is installed. `--log-level LEVEL` works with every command. The',
    'guide, with examples and the JSON formats, is [cli.md](cli.md).',
    '',
    '| exit code | meaning |',
    '|---|---|',
    ...EXIT_CODES.map(([c, what]) => `| ${c} | ${what} |`),
    '',
    ...loaded.flatMap((c) => c.defs.flatMap((def) => [referenceSection(def), ''])),
  ];
  for (const { name, usage } of loaded)
    if (usage !== undefined) parts.push(`## \`klpsim ${name}\``, '', '```', usage, '```', '');
  return `${parts.join('\n').trimEnd()}\n`;
}
