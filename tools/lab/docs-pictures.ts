/**
 * `npm run docs:lab`: runs every scenario (and the variants docs/readiness-lab.md discusses) on this
 * machine and writes their pictures to docs/lab/, so the pictures beside the text stay true. It fails
 * if the document does not show one of them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LabParams } from './model';
import { renderSvg } from './picture';
import { runScenario, SCENARIOS } from './registry';

interface Picture {
  file: string;
  scenario: string;
  params?: Partial<LabParams>;
  mechanisms?: string[];
}

/** Each scenario with its defaults, then the variants the document draws too. */
const PICTURES: readonly Picture[] = [
  ...SCENARIOS.map((s) => ({ file: `${s.name}.svg`, scenario: s.name })),
  { file: 'partial-read-drain.svg', scenario: 'partial-read', params: { drain: true }, mechanisms: ['epoll-et', 'epoll-oneshot', 'io_uring'] },
  { file: 'multishot-end-rearm.svg', scenario: 'multishot-end', params: { rearm: true }, mechanisms: ['io_uring'] },
];

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..', '..');
  const dir = path.join(root, 'docs', 'lab');
  const doc = fs.readFileSync(path.join(root, 'docs', 'readiness-lab.md'), 'utf8');
  fs.mkdirSync(dir, { recursive: true });
  const missing: string[] = [];
  for (const [i, picture] of PICTURES.entries()) {
    process.stderr.write(`[${i + 1}/${PICTURES.length}] ${picture.file}\n`);
    const report = await runScenario(picture.scenario, { params: picture.params, mechanisms: picture.mechanisms });
    fs.writeFileSync(path.join(dir, picture.file), renderSvg(report));
    if (!doc.includes(`(lab/${picture.file})`)) missing.push(picture.file);
  }
  if (missing.length) {
    process.stderr.write(`docs/readiness-lab.md does not show: ${missing.join(', ')}\n`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
