#!/usr/bin/env node
/** The `iomux` command: each subcommand lives in tools/commands/ and registers itself here. */
// First: a package the command needs and cannot find is one line naming it, not a stack trace (tools/optional.ts).
import './preflight';
import { Command } from 'commander';
import { register as registerServe } from './commands/serve';
import { register as registerClient } from './commands/client';
import { register as registerBench } from './commands/bench';
import { register as registerTrace } from './commands/trace';
import { register as registerFiles } from './commands/files';
import { register as registerFtp } from './commands/ftp';

export function main(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('iomux')
    .description('See, measure and use the operating system\'s I/O readiness APIs (select, poll, epoll)')
    .showHelpAfterError()
    .version((require('../../package.json') as { version: string }).version);
  registerServe(program);
  registerClient(program);
  registerBench(program);
  registerTrace(program);
  registerFiles(program);
  registerFtp(program);
  return program.parseAsync(argv);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`iomux: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
