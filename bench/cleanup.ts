/**
 * What a benchmark must undo however it ends — servers in sessions of their own (a signal to the
 * benchmark's process group does not reach them), a CPU cgroup — undone when the process exits: at
 * the end, after an uncaught error, or from the suite's Ctrl-C handling (bench/suite.ts, which stops
 * its descendants and then exits). SIGTERM and SIGHUP end Node without 'exit': while anything is
 * pending, they undo it and then end the process by the same signal. Last registered, first undone.
 */
const pending = new Set<() => void>();
const SIGNALS = ['SIGTERM', 'SIGHUP'] as const;

function undoAll(): void {
  for (const undo of [...pending].reverse()) {
    pending.delete(undo);
    try {
      undo();
    } catch {
      // Best effort: the next one must still run.
    }
  }
}

/** Undoes everything, then lets `signal` end the process as it would have (the shell sees 128 + its number). */
function undoAndReraise(signal: NodeJS.Signals): void {
  undoAll();
  unwatch();
  process.kill(process.pid, signal);
}

function unwatch(): void {
  process.removeListener('exit', undoAll);
  for (const signal of SIGNALS) process.removeListener(signal, undoAndReraise);
}

/** Runs `undo` if the process exits (or SIGTERM/SIGHUP ends it) before the returned function is called (which forgets it). */
export function undoOnExit(undo: () => void): () => void {
  if (pending.size === 0) {
    process.on('exit', undoAll);
    for (const signal of SIGNALS) process.on(signal, undoAndReraise);
  }
  pending.add(undo);
  return () => {
    if (pending.delete(undo) && pending.size === 0) unwatch();
  };
}
