/** Helpers for the readiness-lab tests: run a scenario once and look traces up by label. */
import * as assert from 'node:assert/strict';
import type { LabParams, Report, Summary, Trace } from '../tools/lab/model';
import { runScenario } from '../tools/lab/registry';
import { leakedSince, openKernelObjects } from './helpers';

/** Short quiet waits keep the suite fast; loopback delivery completes within the sending call. */
export const QUIET_MS = 25;

/** Runs `scenario` and checks that it gave back every descriptor it opened. */
export async function runChecked(scenario: string, params: Partial<LabParams>, mechanisms?: string[]): Promise<Report> {
  const before = openKernelObjects();
  const report = await runScenario(scenario, { params: { stallMs: QUIET_MS, ...params }, mechanisms });
  assert.deepEqual(leakedSince(before), [], `${scenario} leaked descriptors`);
  return report;
}

export function trace(report: Report, label: string): Trace {
  const found = report.traces.find((t) => t.label === label);
  assert.ok(found, `no trace labelled ${label} (have ${report.traces.map((t) => t.label).join(', ')})`);
  return found;
}

export function summary(report: Report, label: string): Summary {
  return trace(report, label).summary;
}
