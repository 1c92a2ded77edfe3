#!/usr/bin/env node
/**
 * The interactive client of the greeting server: connects, prints the greeting, then sends each
 * line read from stdin and prints the server's reply. `q` (or the end of stdin) ends the session.
 *
 *   node dist/examples/greeting-client.js --port 9999 [--host ::1] [--timeout 5000]
 */
import * as readline from 'node:readline';
import { Command } from 'commander';
import { constants, Socket } from '../lib/index';
import { DEFAULT_HOST, DEFAULT_PORT, familyOf, parsePort, parsePositive } from './endpoint';
import { LineReader } from './line-reader';

const QUIT = 'q';

export interface GreetingClientOptions {
  host: string;
  port: number;
  /** Milliseconds each socket call may wait (null: block as long as it takes). */
  timeoutMs: number | null;
  input: NodeJS.ReadableStream;
  /** Receives the greeting and every reply. */
  print: (line: string) => void;
  /** Shown before each line when a person is typing. */
  prompt?: string;
}

function nextLine(lines: LineReader): string {
  const line = lines.readLine();
  if (line === null) throw new Error('the server closed the connection');
  return line;
}

export async function runClient(options: GreetingClientOptions): Promise<void> {
  const sock = new Socket(familyOf(options.host), constants.SOCK_STREAM);
  const input = readline.createInterface({ input: options.input, terminal: false, crlfDelay: Infinity });
  try {
    sock.setTimeout(options.timeoutMs);
    sock.connect(options.host, options.port);
    const replies = new LineReader(sock);
    options.print(nextLine(replies));
    const ask = (): void => {
      if (options.prompt) process.stdout.write(options.prompt);
    };
    ask();
    for await (const line of input) {
      sock.sendAll(`${line}\n`);
      if (line === QUIT) return;
      options.print(nextLine(replies));
      ask();
    }
    // stdin ended without `q`: say it anyway, so the server moves on to its next client at once.
    sock.sendAll(`${QUIT}\n`);
  } finally {
    input.close();
    sock.close();
  }
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = new Command('greeting-client')
    .description('Talk to the greeting server: each line you type comes back with its suffix; "q" quits')
    .option('--host <address>', 'server address (IPv4 or IPv6)', DEFAULT_HOST)
    .option('--port <port>', 'server port', parsePort, DEFAULT_PORT)
    .option('--timeout <ms>', 'give up when the server does not answer within this many milliseconds', parsePositive)
    .showHelpAfterError()
    .parse(argv);
  const opts = program.opts<{ host: string; port: number; timeout?: number }>();
  await runClient({
    host: opts.host,
    port: opts.port,
    timeoutMs: opts.timeout ?? null,
    input: process.stdin,
    print: (line) => process.stdout.write(`${line}\n`),
    prompt: process.stdin.isTTY ? '> ' : undefined,
  });
  // readline has stopped reading; release stdin so the process can end.
  process.stdin.destroy();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`greeting-client: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
    process.stdin.destroy();
  });
}
