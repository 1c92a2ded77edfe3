/**
 * Turning a run's numbers into sentences. Conclusions are computed from the traces, never written in
 * advance, so the lab can only say what this kernel actually did.
 */
import type { Trace } from './model';

/**
 * One line per distinct behaviour: the variants whose `describe` gives the same sentence share a
 * line, e.g. "select, poll, epoll-lt: reported the socket 10 times ...". Refused setups get their own.
 */
export function describeGroups(traces: Trace[], describe: (t: Trace) => string): string[] {
  const groups = new Map<string, string[]>();
  for (const trace of traces) {
    const sentence = trace.summary.error ? `the kernel refused the setup: ${trace.summary.error}` : describe(trace);
    groups.set(sentence, [...(groups.get(sentence) ?? []), trace.label]);
  }
  return [...groups].map(([sentence, labels]) => `${labels.join(', ')}: ${sentence}.`);
}

export function times(n: number): string {
  return n === 1 ? 'once' : `${n} times`;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
