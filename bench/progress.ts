/** The progress bar shown while the suite runs (cli-progress, on stderr; silent when stderr is not a terminal). */
import * as cliProgress from 'cli-progress';

export interface Progress {
  /** Starts a part with this many cells. */
  part(name: string, cells: number): void;
  /** One cell is starting. */
  tick(label: string): void;
  /** What the current cell is doing now (a long cell's own progress). */
  note(label: string): void;
  stop(): void;
}

export function createProgress(enabled: boolean, total: number): Progress {
  if (!enabled || !process.stderr.isTTY) return { part() {}, tick() {}, note() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: ' {bar} {percentage}% | {value}/{total} cells | {eta_formatted} left | {part}: {cell}',
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 20,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, 0, { part: '', cell: '' });
  let part = '';
  let started = false;
  return {
    part(name) {
      part = name;
      bar.update({ part, cell: 'starting' });
    },
    tick(label) {
      // A tick announces a cell; the previous one is done.
      if (started) bar.increment(1, { part, cell: label });
      else bar.update({ part, cell: label });
      started = true;
    },
    note(label) {
      bar.update({ part, cell: label });
    },
    stop() {
      bar.update(total);
      bar.stop();
    },
  };
}
