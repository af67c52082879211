/**
 * The two rules of the source tree that `npm run lint` enforces (docs/architecture.md): no import
 * cycles, and a pure src/protocol/. Checked here against files made to break them, so that a change
 * of the ESLint configuration that stops enforcing either fails a test.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const eslint = new ESLint({ cwd: root });

async function ruleIds(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, filePath) });
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

describe('source tree rules', () => {
  it('src/protocol/ may not import I/O modules, the rest of src/, or use timers', async () => {
    assert.deepEqual(await ruleIds('src/protocol/example.ts', "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n"), ['@typescript-eslint/no-restricted-imports']);
    assert.deepEqual(await ruleIds('src/protocol/example.ts', "import { log } from '../log.js';\nexport const l = log;\n"), ['@typescript-eslint/no-restricted-imports']);
    assert.deepEqual(await ruleIds('src/protocol/example.ts', 'export const later = (f: () => void) => setTimeout(f, 1);\n'), ['no-restricted-globals']);
    // Type-only imports of node:http types and pure packages are fine.
    assert.deepEqual(await ruleIds('src/protocol/example.ts', "import type { IncomingHttpHeaders } from 'node:http';\nimport ms from 'ms';\nexport type H = IncomingHttpHeaders;\nexport const m = ms;\n"), []);
    // Elsewhere the same imports are allowed.
    assert.deepEqual(await ruleIds('src/http/example.ts', "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n"), []);
  });

  it('src/client/ imports nothing but src/client/: no Node, no packages, no server code', async () => {
    assert.deepEqual(await ruleIds('src/client/example.ts', "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n"), ['@typescript-eslint/no-restricted-imports']);
    assert.deepEqual(await ruleIds('src/client/example.ts', "import { WebSocket } from 'ws';\nexport const W = WebSocket;\n"), ['@typescript-eslint/no-restricted-imports']);
    assert.deepEqual(await ruleIds('src/client/example.ts', "import { formatId } from '../protocol/message-id.js';\nexport const f = formatId;\n"), ['@typescript-eslint/no-restricted-imports']);
    assert.deepEqual(await ruleIds('src/client/example.ts', "import { withLastId } from './wire.js';\nexport const w = withLastId;\n"), []);
  });

  const dir = join(root, 'src', `.cycle-check-${process.pid}`);
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('an import cycle in src/ fails lint', async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'a.ts'), "import { b } from './b.js';\nexport const a = () => b();\n");
    writeFileSync(join(dir, 'b.ts'), "import { a } from './a.js';\nexport const b = (): unknown => a;\n");
    const results = await eslint.lintFiles([join(dir, 'a.ts')]);
    assert.ok(
      results[0]!.messages.some((m) => m.ruleId === 'import-x/no-cycle'),
      `expected import-x/no-cycle, got ${JSON.stringify(results[0]!.messages.map((m) => m.ruleId))}`,
    );
  });
});
