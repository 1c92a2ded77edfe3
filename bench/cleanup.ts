/**
 * What a benchmark must undo however it ends — servers in sessions of their own (a signal to the
 * benchmark's process group does not reach them), a CPU cgroup — undone when the process exits: at
 * the end, after an uncaught error, or from the suite's Ctrl-C handling (bench/suite.ts, which stops
 * its descendants and then exits). Last registered, first undone.
 */
const pending = new Set<() => void>();

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

/** Runs `undo` if the process exits before the returned function is called (which forgets it). */
export function undoOnExit(undo: () => void): () => void {
  if (pending.size === 0) process.on('exit', undoAll);
  pending.add(undo);
  return () => {
    if (pending.delete(undo) && pending.size === 0) process.removeListener('exit', undoAll);
  };
}
