/** `iomux bench` (also `npm run bench`): scaling, micro-benchmarks and echo throughput, as one command. */
import * as fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ECHO_SERVERS, EchoServerName } from '../../bench/echo';
import { SCALING_MECHANISMS, ScalingMechanism, Transport } from '../../bench/scaling';
import { FTP_SERVERS, FtpServerName } from '../../bench/ftp';
import { TRANSFER_CLIENTS, TransferClient } from '../../bench/ftp-transfers';
import type { SyscallTool } from '../../bench/syscalls';
import { DEFAULT_PARTS, defaultOutDir, filesPreset, FULL_PARTS, Part, PARTS, presetOptions, threadsPreset } from '../../bench/options';
import { docPath } from '../docs';
import { ensurePackages, OptionalPackage } from '../optional';

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

function integerList(name: string, min: number, max: number) {
  const one = integer(name, min, max);
  return (value: string): number[] => value.split(',').map((item) => one(item.trim()));
}

function choiceList<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T[] => value.split(',').map((item) => {
    const v = item.trim() as T;
    if (!choices.includes(v)) throw new InvalidArgumentError(`${name}: "${item}" is not one of ${choices.join(', ')}`);
    return v;
  });
}

interface BenchFlags {
  scaling?: boolean;
  micro?: boolean;
  echo?: boolean;
  /** The part flag, optionally with the thread counts to compare (true: the default 1,2). */
  threads?: boolean | number[];
  interest?: boolean;
  files?: boolean;
  ftp?: boolean;
  ftpServers?: FtpServerName[];
  ftpClients?: number;
  ftpFileSize?: number;
  ftpTransferSize?: number;
  ftpSeconds?: number;
  ftpWholeClients?: TransferClient[];
  ftpWholeSize?: number;
  ftpWholeRounds?: number;
  /** With --ftp: the FTPS comparison (bench/ftps.ts) instead. */
  tls?: boolean;
  ftpsRounds?: number;
  soak?: boolean;
  soakConnections?: number;
  soakDuration?: number;
  soakInterval?: number;
  soakSample?: number;
  churnCycles?: number;
  churnParallel?: number;
  churnWarmup?: number;
  only?: Part[];
  full?: boolean;
  mechanisms?: ScalingMechanism[];
  servers?: EchoServerName[];
  n?: number[];
  active?: number[];
  connections?: number[];
  size?: number[];
  depth?: number;
  repeat?: number;
  time?: number;
  microTime?: number;
  warmup?: number;
  duration?: number;
  syscallDuration?: number;
  fileSize?: number;
  uploads?: number;
  uploadSize?: number;
  transport?: Transport;
  out: string;
  json?: string;
  pin: boolean;
  syscalls: boolean;
  syscallTool?: SyscallTool;
  costs: boolean;
  charts: boolean;
  progress: boolean;
  from?: string;
  compare?: string[];
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('Measure select/poll/epoll scaling, the cost of a call through the addon, and echo throughput against Node\'s net and a C ceiling')
    .option('--scaling', 'run the scaling part (N watched, A active per round)')
    .option('--micro', 'run the micro-benchmarks (one call through the addon vs C)')
    .option('--echo', 'run the echo throughput part')
    .option('--threads [counts]', 'run the threads part (1 vs N threads: iomux serve --threads in both balance modes, Node cluster, the C server with SO_REUSEPORT) and the threads-vs-reactor cost table; counts default to 1,2',
      integerList('thread counts', 1, 256))
    .option('--interest', 'run the interest-churn part (epoll level- vs edge-triggered, direct vs queued, C = 100 and 1000, D = 1 and 8)')
    .option('--files', 'run the file-transfer part: 1 GiB put/get vs Node stream.pipeline and a C sendfile pipe, server RSS, 100 concurrent 10 MiB uploads (128 MiB and 1 MiB uploads inside the default suite)')
    .option('--ftp', 'run the FTP benchmark (ftpbench\'s steps and 1 GiB transfers with curl, C and ftplib clients against iomux ftp serve, pyftpdlib, vsftpd and ftp-srv); in the default suite only with --full')
    .option('--ftp-servers <list>', `FTP servers: ${FTP_SERVERS.join(', ')}`, choiceList('--ftp-servers', FTP_SERVERS))
    .option('--ftp-clients <n>', 'FTP: concurrent clients N (default 50; 1000 with --full)', integer('ftp-clients', 1, 100_000))
    .option('--ftp-file-size <bytes>', 'FTP: bytes each client moves in the concurrent RETR and STOR steps (default 4 MiB; 1 MiB with --full)',
      integer('ftp-file-size', 1, 2 ** 40))
    .option('--ftp-transfer-size <bytes>', 'FTP: bytes per transfer in the one-client steps (default 64 MiB; 256 MiB with --full)',
      integer('ftp-transfer-size', 1, 2 ** 40))
    .option('--ftp-seconds <s>', 'FTP: how long each one-client step transfers (default 1; 2 with --full)', (value: string) => {
      const n = Number(value);
      if (!(n > 0 && n <= 3600)) throw new InvalidArgumentError('--ftp-seconds must be a number of seconds from 0 to 3600');
      return n;
    })
    .option('--ftp-whole-clients <list>', `FTP: clients of the whole-file transfers: ${TRANSFER_CLIENTS.join(', ')}, or none (default all)`,
      (value: string) => (value === 'none' ? [] : choiceList('--ftp-whole-clients', TRANSFER_CLIENTS)(value)))
    .option('--ftp-whole-size <bytes>', 'FTP: bytes of each whole-file transfer (default 1 GiB)', integer('ftp-whole-size', 1, 2 ** 40))
    .option('--ftp-whole-rounds <n>', 'FTP: interleaved rounds of the whole-file transfers (default 3; 5 with --full)', integer('ftp-whole-rounds', 1, 1000))
    .option('--tls', 'with --ftp: FTPS instead — one client\'s RETR and STOR of 1 GiB (or --ftp-transfer-size) over TLS against iomux, pyftpdlib\'s TLS_FTPHandler and vsftpd ssl_enable')
    .option('--ftps-rounds <n>', 'FTPS: interleaved rounds (default 3)', integer('ftps-rounds', 1, 100))
    .option('--soak', 'run the soak part: 10,000 connections held 60 s, then 1,000,000 connect/echo/close cycles, against iomux serve and Node\'s net (minutes; not in the default suite or --full)')
    .option('--soak-connections <n>', 'soak: connections held at once (default 10000)', integer('soak-connections', 1, 100_000))
    .option('--soak-duration <s>', 'soak: how long the connections are held (default 60; the C = 100 reference runs min(10, this))', integer('soak-duration', 1, 86_400))
    .option('--soak-interval <ms>', 'soak: each held connection echoes one message this often (default 1000)', integer('soak-interval', 1, 3_600_000))
    .option('--soak-sample <ms>', 'soak: how often p99, RSS, descriptors and TCP counters are sampled (default 1000)', integer('soak-sample', 10, 3_600_000))
    .option('--churn-cycles <n>', 'soak: connect/echo/close cycles (default 1000000)', integer('churn-cycles', 1, 1_000_000_000))
    .option('--churn-parallel <n>', 'soak: cycles in parallel (default 100)', integer('churn-parallel', 1, 10_000))
    .option('--churn-warmup <n>', 'soak: warm-up cycles before the churn is measured (default 200000: until the heap has grown to the load)', integer('churn-warmup', 1, 1_000_000_000))
    .option('--only <parts>', `comma-separated parts: ${PARTS.join(', ')}`, choiceList('--only', PARTS))
    .option('--full', 'the full sweep (more N, A, C, S, servers; longer cells)')
    .option('-m, --mechanisms <list>', `scaling mechanisms: ${SCALING_MECHANISMS.join(', ')}`, choiceList('--mechanisms', SCALING_MECHANISMS))
    .option('--servers <list>', `echo servers: ${ECHO_SERVERS.join(', ')}`, choiceList('--servers', ECHO_SERVERS))
    .option('-n, --n <list>', 'scaling: descriptors watched, e.g. 10,100,1000,10000', integerList('N', 1, 10_000_000))
    .option('-a, --active <list>', 'scaling: descriptors made ready per round (A), e.g. 1,100', integerList('A', 1, 10_000_000))
    .option('-c, --connections <list>', 'echo and interest: concurrent connections (C), e.g. 10,100', integerList('C', 1, 100_000))
    .option('-s, --size <list>', 'echo: message size in bytes (S), e.g. 64,4096', integerList('S', 1, 16 * 2 ** 20))
    .option('-d, --depth <n>', 'echo: messages in flight per connection (D)', integer('D', 1, 1024))
    .option('-r, --repeat <n>', 'repetitions of every cell (the median is reported with min–max)', integer('repeat', 1, 100))
    .option('--time <ms>', 'scaling: timed rounds per cell last at least this long', integer('time', 1, 600_000))
    .option('--micro-time <ms>', 'micro: time per benchmark and repetition', integer('micro-time', 10, 600_000))
    .option('--warmup <ms>', 'echo: warm-up before the timed window', integer('warmup', 0, 600_000))
    .option('--duration <ms>', 'echo: timed window', integer('duration', 10, 3_600_000))
    .option('--file-size <MiB>', 'files: the large file, in MiB', integer('file-size', 1, 1024 * 1024))
    .option('--uploads <n>', 'files: concurrent uploads into one server', integer('uploads', 1, 5000))
    .option('--upload-size <MiB>', 'files: size of each concurrent upload, in MiB', integer('upload-size', 1, 1024 * 1024))
    .option('--syscall-duration <ms>', 'echo: length of the run per server whose system calls are counted (C=100, S=64)', integer('syscall-duration', 10, 600_000))
    .addOption(new Option('--syscall-tool <tool>', 'echo and interest: count system calls with perf\'s syscall tracepoints or strace (default: perf where it works)')
      .choices(['perf', 'strace']))
    .addOption(new Option('--transport <kind>', 'scaling: watched descriptors are self-connected UDP sockets (one fd each) or socketpairs (two)')
      .choices(['udp', 'socketpair']))
    .option('-o, --out <dir>', 'where results.json, CSV and SVG files go', defaultOutDir())
    .option('--json <file>', 'also write the JSON record to this file')
    .option('--no-pin', 'echo: do not pin server and load generator to different cores')
    .option('--no-syscalls', 'echo: skip the extra run that counts system calls per message')
    .option('--no-costs', 'threads: skip the table of what a connection costs on threads and on a reactor')
    .option('--no-charts', 'do not render SVG charts')
    .option('--no-progress', 'no progress bar')
    .option('--from <results.json>', 'measure nothing: print and write the tables, CSV, charts and report.html of a saved run again')
    .option('--compare <A.json B.json...>', 'measure nothing: two saved runs side by side, B / A per row, changes beyond the runs\' own noise marked; writes compare.md and compare.html into --out')
    .addHelpText('after', `
Without part flags scaling, micro, echo and a short threads part run, within three minutes on two
cores: \`npm run bench\` took 136 s and 153 s from fresh clones, TypeScript and C builds included, with
the machine otherwise busy (load average 8–9). The long parts run by their flags: --interest (about a
minute), --files (1 GiB, about 90 s), --threads (complete), --ftp, --soak (minutes). --full sweeps N up
to 100000 (as far as RLIMIT_NOFILE allows), C up to 1000 and S = 64 and 4096, and runs every part but
the soak. Every run writes report.html (open it in a browser); --compare A.json B.json sets two saved
runs side by side.

Examples:
  iomux bench                                  # the default suite
  iomux bench --scaling -n 100,10000 -a 1      # the classic scaling picture only
  iomux bench --echo --servers c,node,iomux-epoll -c 100 -s 64 --repeat 5
  iomux bench --threads                        # 1 vs 2 threads, C = 100 and 1000, and the cost table
  iomux bench --threads 1,4,8 -c 1000 --no-pin # on a bigger machine (see ${docPath('benchmarks.md')})
  iomux bench --files                          # 1 GiB put/get, server RSS, 100 concurrent uploads
  iomux bench --ftp                            # FTP: iomux (epoll, poll, select) vs pyftpdlib, vsftpd, ftp-srv
  iomux bench --soak                           # 10,000 connections for 60 s, 1,000,000 churn cycles (npm run bench:soak)
  iomux bench --soak --soak-duration 20 --churn-cycles 100000   # a shorter soak
  iomux bench --full --out /tmp/bench --json /tmp/bench.json
  iomux bench --compare before/results.json after/results.json   # B / A per row, changes beyond noise marked`)
    .action(async (flags: BenchFlags) => {
      const chosen = PARTS.filter((p) => (p === 'threads' ? flags.threads !== undefined : flags[p] === true));
      const full = flags.full === true;
      const parts = flags.only ?? (chosen.length > 0 ? chosen : full ? [...FULL_PARTS] : [...DEFAULT_PARTS]);
      const preset = presetOptions(full);
      const s = preset.scaling;
      const e = preset.echo;
      const m = preset.micro;
      // Asked for by name, the threads part runs complete; in the default suite it is short.
      const t = flags.threads !== undefined ? threadsPreset(true) : preset.threads;
      if (Array.isArray(flags.threads)) t.counts = [...new Set([1, ...flags.threads])].sort((x, y) => x - y);
      if (flags.connections) t.connections = flags.connections;
      if (flags.depth !== undefined) t.depth = flags.depth;
      if (flags.size) t.size = flags.size[0];
      if (!flags.costs) t.costs = null;
      if (flags.warmup !== undefined) t.warmupMs = flags.warmup;
      if (flags.duration !== undefined) t.durationMs = flags.duration;
      t.pin = flags.pin;
      const i = preset.interest;
      // The file part at the size (1 GiB, 100 x 10 MiB) when asked for by itself or in --full;
      // a smaller one inside the default suite, which must stay within its three minutes.
      const f = filesPreset(full || flags.files === true || (flags.only?.includes('files') ?? false));
      if (flags.fileSize !== undefined) f.sizeMiB = flags.fileSize;
      if (flags.uploads !== undefined) f.uploads = flags.uploads;
      if (flags.uploadSize !== undefined) f.uploadMiB = flags.uploadSize;
      const ftp = preset.ftp;
      if (flags.ftpServers) ftp.servers = flags.ftpServers;
      if (flags.ftpClients !== undefined) ftp.clients = flags.ftpClients;
      if (flags.ftpFileSize !== undefined) ftp.fileSize = flags.ftpFileSize;
      if (flags.ftpTransferSize !== undefined) ftp.transferSize = flags.ftpTransferSize;
      if (flags.ftpSeconds !== undefined) ftp.seconds = flags.ftpSeconds;
      if (flags.ftpWholeClients) ftp.wholeClients = flags.ftpWholeClients;
      if (flags.ftpWholeSize !== undefined) ftp.wholeSize = flags.ftpWholeSize;
      if (flags.ftpWholeRounds !== undefined) ftp.wholeRounds = flags.ftpWholeRounds;
      const soak = preset.soak;
      if (flags.servers) soak.servers = flags.servers;
      if (flags.soakConnections !== undefined) soak.connections = flags.soakConnections;
      if (flags.soakDuration !== undefined) soak.holdMs = flags.soakDuration * 1000;
      soak.baselineMs = Math.min(soak.baselineMs, soak.holdMs);
      if (flags.soakInterval !== undefined) soak.intervalMs = flags.soakInterval;
      if (flags.soakSample !== undefined) soak.sampleMs = flags.soakSample;
      if (flags.churnCycles !== undefined) soak.cycles = flags.churnCycles;
      if (flags.churnParallel !== undefined) soak.parallel = flags.churnParallel;
      if (flags.churnWarmup !== undefined) soak.warmupCycles = flags.churnWarmup;
      soak.pin = flags.pin;
      if (flags.mechanisms) s.mechanisms = flags.mechanisms;
      if (flags.n) s.n = flags.n;
      if (flags.active) s.a = flags.active;
      if (flags.time !== undefined) s.timeMs = flags.time;
      if (flags.transport) s.transport = flags.transport;
      if (flags.servers) e.servers = flags.servers;
      if (flags.connections) e.connections = i.connections = flags.connections;
      if (flags.size) e.sizes = flags.size;
      if (flags.depth !== undefined) e.depth = flags.depth;
      if (flags.warmup !== undefined) e.warmupMs = i.warmupMs = flags.warmup;
      if (flags.duration !== undefined) e.durationMs = i.durationMs = flags.duration;
      if (flags.syscallDuration !== undefined) e.syscallDurationMs = i.syscallDurationMs = flags.syscallDuration;
      if (flags.microTime !== undefined) m.timeMs = flags.microTime;
      if (flags.repeat !== undefined) s.repeat = m.repeat = e.repeat = i.repeat = f.repeat = t.repeat = flags.repeat;
      e.pin = i.pin = ftp.pin = flags.pin;
      e.syscalls = i.syscalls = flags.syscalls;
      if (flags.syscallTool) e.syscallTool = i.syscallTool = flags.syscallTool;
      // `iomux bench | head` closes stdout early: that is not an error worth a stack trace.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') process.exit(0);
        throw err;
      });
      const print = (text: string) => process.stdout.write(`${text}\n`);
      // These two need none of the optional packages.
      if (flags.ftp && flags.tls) {
        // Its own part, in its own file: the FTPS comparison (bench/ftps.ts).
        const { FTPS_SERVERS, formatFtps, runFtps } = await import('../../bench/ftps');
        const result = await runFtps({ servers: [...FTPS_SERVERS], transferSize: flags.ftpTransferSize ?? 2 ** 30, rounds: flags.ftpsRounds ?? 3, pin: flags.pin },
          (label) => {
            if (flags.progress) process.stderr.write(`${label}\n`);
          });
        print(formatFtps(result));
        if (flags.json) fs.writeFileSync(flags.json, `${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      if (flags.compare) {
        if (flags.compare.length !== 2) throw new InvalidArgumentError(`--compare takes two results.json files, got ${flags.compare.length}`);
        const { runComparison } = await import('../../bench/compare');
        runComparison(flags.compare[0], flags.compare[1], flags.out, print);
        return;
      }
      // The optional packages this run needs are there before anything is measured, or one line says how to get them.
      const measured = flags.from === undefined;
      const needed: OptionalPackage[] = [
        ...(measured && parts.includes('micro') ? ['benchmark' as const] : []),
        ...(measured && parts.includes('ftp') && ftp.servers.includes('ftp-srv') ? ['ftp-srv' as const] : []),
        ...(flags.charts ? ['vega' as const, 'vega-lite' as const] : []),
      ];
      ensurePackages('iomux bench', needed, {
        vega: '--no-charts', 'vega-lite': '--no-charts', 'ftp-srv': `--ftp-servers ${FTP_SERVERS.filter((s) => s !== 'ftp-srv').join(',')}`,
      });
      // Loaded here, not at the top: the charting and benchmarking libraries would slow every iomux command.
      const { redrawSuite, runSuite } = await import('../../bench/suite');
      if (flags.from) {
        await redrawSuite(flags.from, { outDir: flags.out, jsonFile: flags.json, charts: flags.charts, print });
        return;
      }
      await runSuite({
        parts, full, scaling: s, micro: m, echo: e, interest: i, files: f, ftp, threads: t, soak,
        outDir: flags.out, jsonFile: flags.json, charts: flags.charts, progress: flags.progress,
        print,
      });
    });
}
