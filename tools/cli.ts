#!/usr/bin/env node
/**
 * The `iomux` command. Each subcommand lives in tools/commands/ and registers itself; only the one that runs
 * (or whose help is asked for) is loaded, so `iomux serve` never loads the benchmark, and the other commands
 * appear in `iomux --help` by their summaries alone.
 */
import { Command } from 'commander';

interface CommandModule {
  register(program: Command): void;
}

const COMMANDS: ReadonlyArray<{ name: string; summary: string; load: () => CommandModule }> = [
  { name: 'serve', summary: 'the multiplexed echo server (RFC 862) on a chosen mechanism', load: () => require('./commands/serve') as CommandModule },
  { name: 'client', summary: 'the seed\'s interactive echo client', load: () => require('./commands/client') as CommandModule },
  { name: 'bench', summary: 'measure scaling, call costs and throughput against Node and C', load: () => require('./commands/bench') as CommandModule },
  { name: 'trace', summary: 'watch each mechanism handle the same scripted scenario, side by side', load: () => require('./commands/trace') as CommandModule },
  { name: 'files', summary: 'resumable, verified file transfer: serve, put, get', load: () => require('./commands/files') as CommandModule },
  { name: 'ftp', summary: 'an FTP server and its accounts', load: () => require('./commands/ftp') as CommandModule },
];

/** The first argument that is not an option (the program's own options take no value). */
export function commandOf(args: readonly string[]): string | undefined {
  return args.find((arg) => !arg.startsWith('-'));
}

/** The subcommand `iomux <args>` runs or asks help for (`iomux help bench` asks for bench's). */
export function invokedCommand(args: readonly string[]): string | undefined {
  const first = commandOf(args);
  return first === 'help' ? commandOf(args.slice(args.indexOf('help') + 1)) : first;
}

export function main(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('iomux')
    .description('See, measure and use the operating system\'s I/O readiness APIs (select, poll, epoll)')
    .showHelpAfterError()
    .version((require('../../package.json') as { version: string }).version);
  const invoked = invokedCommand(argv.slice(2));
  for (const { name, summary, load } of COMMANDS) {
    if (name === invoked) load().register(program);
    else program.command(name).summary(summary);
  }
  return program.parseAsync(argv);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`iomux: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
