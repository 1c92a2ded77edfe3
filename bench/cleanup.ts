/**
 * What a benchmark must undo even when it is stopped halfway — servers in sessions of their own (a
 * Ctrl-C to the benchmark does not reach them), a CPU cgroup — undone at exit, or on SIGINT and
 * SIGTERM, after which the signal takes its default action. Last registered, first undone.
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

function passOn(signal: NodeJS.Signals): void {
  undoAll();
  listen(false);
  process.kill(process.pid, signal);
}

function listen(on: boolean): void {
  const method = on ? 'on' : 'removeListener';
  process[method]('exit', undoAll);
  process[method]('SIGINT', passOn);
  process[method]('SIGTERM', passOn);
}

/** Runs `undo` if the process ends before the returned function is called (which forgets it). */
export function undoOnExit(undo: () => void): () => void {
  if (pending.size === 0) listen(true);
  pending.add(undo);
  return () => {
    if (pending.delete(undo) && pending.size === 0) listen(false);
  };
}
