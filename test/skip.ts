/**
 * The only ways a test is skipped here, each with its reason shown beside the tests it skips: the
 * platform, the kernel or the machine cannot have what the test shows. A missing tool is never a
 * reason (requireTool fails instead), nor is a build that lacks what its platform must have
 * (linuxFeature fails then): a skip must not be a way to get green.
 */
import * as assert from 'node:assert/strict';

/** Skips the running test (or, from a hook, its suite) unless `condition` holds, naming `reason` in the report. */
export function skipUnless(ctx: Mocha.Context, condition: unknown, reason: string): asserts condition {
  if (condition) return;
  const runnable = ctx.test as (Mocha.Runnable & { type?: string }) | undefined;
  const skipped = runnable === undefined ? [] : runnable.type === 'hook' ? testsOf(runnable.parent) : [runnable];
  for (const test of skipped) test.title += ` [skipped: ${reason}]`;
  ctx.skip();
}

/**
 * A Linux-only part of the addon (epoll, sendfile, LoopWatcher…): skipped elsewhere; on Linux its
 * absence is a build fault, and fails.
 */
export function linuxFeature(ctx: Mocha.Context, present: unknown, what: string): asserts present {
  skipUnless(ctx, process.platform === 'linux', `${what}: Linux only`);
  assert.ok(present, `${what} is missing from this Linux build of the addon: a build fault, not a platform's absence`);
}

function testsOf(suite: Mocha.Suite | undefined): Mocha.Runnable[] {
  if (suite === undefined) return [];
  return [...suite.tests, ...suite.suites.flatMap((child) => testsOf(child))];
}
