/**
 * The suite's progress on stderr: a cli-progress bar on a terminal; elsewhere (a CI log, `2> file`) one plain
 * line per cell, so a long run is never silent.
 */
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

export function createProgress(enabled: boolean, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!enabled) return { part() {}, tick() {}, note() {}, stop() {} };
  return stream.isTTY ? progressBar(total, stream) : progressLines(total, stream);
}

function progressBar(total: number, stream: NodeJS.WriteStream): Progress {
  const bar = new cliProgress.SingleBar({
    stream,
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

/** `[  3/120  0:42] scaling: epoll N=1000 A=1`: the cell starting, how many before it, the time so far. */
function progressLines(total: number, stream: NodeJS.WritableStream): Progress {
  const started = Date.now();
  const width = String(total).length;
  let part = '';
  let cell = 0;
  const line = (text: string) => {
    const seconds = Math.round((Date.now() - started) / 1000);
    const clock = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
    stream.write(`[${String(cell).padStart(width)}/${total} ${clock.padStart(5)}] ${part}: ${text}\n`);
  };
  return {
    part(name) {
      part = name;
    },
    tick(label) {
      cell++;
      line(label);
    },
    note(label) {
      line(`  ${label}`);
    },
    stop() {},
  };
}
