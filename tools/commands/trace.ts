/** `iomux trace`: run a readiness-lab scenario and print its timeline (tools/lab/). */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { LabParams } from '../lab/model';
import { SCENARIOS, defaultsOf, findScenario, runScenario } from '../lab/registry';
import * as fs from 'node:fs';
import { renderJson, renderText } from '../lab/render';
import { renderSvg } from '../lab/picture';
import { renderHtml } from '../lab/page';

/** Each scenario parameter's flag and help text; the scenario decides whether it takes it. */
const PARAM_FLAGS: ReadonlyArray<{ key: keyof LabParams; flags: string; help: string }> = [
  { key: 'bytes', flags: '--bytes <n>', help: 'bytes the peer sends (partial-read, half-close, sticky-packets)' },
  { key: 'chunk', flags: '--chunk <n>', help: 'bytes per read (partial-read) or per message (arrivals, oneshot-rearm, sticky-packets, short-read\'s burst)' },
  { key: 'drain', flags: '--drain', help: 'read or accept until EAGAIN on every wake-up (partial-read, accept-storm, short-read)' },
  { key: 'rearm', flags: '--rearm', help: 're-arm with EPOLL_CTL_MOD after every wake-up (multishot-end: a new POLL_ADD when a poll ended)' },
  { key: 'connections', flags: '--connections <n>', help: 'connections (accept-storm, thundering-herd, multishot-end)' },
  { key: 'workers', flags: '--workers <n>', help: 'worker threads (thundering-herd)' },
  { key: 'messages', flags: '--messages <n>', help: 'messages sent one at a time (arrivals, oneshot-rearm), back to back (sticky-packets) or by another thread (short-read)' },
  { key: 'waits', flags: '--waits <n>', help: 'waits counted per phase (writable, half-close)' },
  { key: 'cycles', flags: '--cycles <n>', help: 'fill/drain cycles (writable)' },
  { key: 'stallMs', flags: '--stall-ms <n>', help: 'a wait reporting nothing this long is quiet, or a stall if work remains' },
  { key: 'settleMs', flags: '--settle-ms <n>', help: 'how long to wait for more workers after the first woke (thundering-herd)' },
  { key: 'depth', flags: '--depth <n>', help: 'messages the peer keeps in flight (interest-churn)' },
];

interface TraceOptions extends Partial<LabParams> {
  list?: boolean;
  json?: boolean;
  mechanism?: string[];
  rows: number;
  svg?: string;
  html?: string;
}

export function register(program: Command): void {
  const command = program
    .command('trace')
    .description('watch select, poll, epoll (level, edge, one-shot) and io_uring handle the same scripted scenario, side by side')
    .argument('[scenario]', 'which scenario to run (see --list)')
    .option('-l, --list', 'list the scenarios, one line each')
    .option('-m, --mechanism <names...>', 'only these: select, poll, epoll-lt, epoll-et, epoll-oneshot, io_uring, epoll, all (comma-separated or repeated)')
    .option('--json', 'print the report as JSON')
    .option('--svg <file>', 'also draw the timeline as a picture (SVG): one lane per mechanism, every wake-up, recv, EAGAIN marked')
    .option('--html <file>', 'also write one self-contained HTML page: the picture, the counts, and the text timeline')
    .option('--rows <n>', 'timeline rows shown per mechanism; 0 shows all', integer, 24);
  for (const { flags, help } of PARAM_FLAGS) {
    const option = new Option(flags, help);
    if (flags.includes('<')) option.argParser(integer);
    command.addOption(option);
  }
  command.addHelpText('after', `\nScenarios:\n${listing()}\nExample: iomux trace partial-read --mechanism epoll-lt,epoll-et --drain\n         iomux trace partial-read --svg partial-read.svg --html partial-read.html`);
  command.action(async (name: string | undefined, options: TraceOptions, cmd: Command) => {
    if (options.list) {
      process.stdout.write(`${listing()}\n`);
      return;
    }
    if (!name) throw new Error(`which scenario? Choose one of:\n${listing()}`);
    const scenario = findScenario(name);
    const takes = defaultsOf(scenario);
    const params: Partial<LabParams> = {};
    for (const { key, flags } of PARAM_FLAGS) {
      if (cmd.getOptionValueSource(key) !== 'cli') continue;
      if (!(key in takes)) {
        const accepted = PARAM_FLAGS.filter((p) => p.key in takes).map((p) => p.flags.split(' ')[0]);
        throw new Error(`${name} does not take ${flags.split(' ')[0]} (it takes ${accepted.join(', ')})`);
      }
      Object.assign(params, { [key]: options[key] });
    }
    const report = await runScenario(name, { mechanisms: options.mechanism, params });
    process.stdout.write(options.json ? renderJson(report) : renderText(report, { maxRows: options.rows }));
    for (const [file, render] of [[options.svg, renderSvg], [options.html, renderHtml]] as const) {
      if (file === undefined) continue;
      fs.writeFileSync(file, render(report));
      process.stderr.write(`iomux trace: wrote ${file}\n`);
    }
  });
}

function listing(): string {
  const width = Math.max(...SCENARIOS.map((s) => s.name.length));
  return SCENARIOS.map((s) => `  ${s.name.padEnd(width)}  ${s.title}`).join('\n');
}

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
}
