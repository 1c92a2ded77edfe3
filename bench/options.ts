/**
 * What a benchmark run is asked to do: the parts, the presets (the default suite and --full) and the
 * options type. Kept apart from the suite so the CLI can list choices without loading the charting
 * and benchmarking libraries.
 */
import * as path from 'node:path';
import { installationOf } from '../tools/optional';
import { DEFAULT_ECHO_SERVERS, ECHO_SERVERS, EchoOptions } from './echo';
import type { FilesOptions } from './files';
import { FTP_SERVERS, FtpOptions } from './ftp';
import { TRANSFER_CLIENTS } from './ftp-transfers';
import type { InterestOptions } from './interest';
import type { MicroOptions } from './micro';
import { SCALING_MECHANISMS, ScalingOptions } from './scaling';
import { SoakOptions, soakPreset } from './soak';
import { THREADS_SERVER_KINDS, ThreadsOptions } from './threads';

export const PARTS = ['scaling', 'micro', 'echo', 'interest', 'files', 'threads', 'ftp', 'soak'] as const;
export type Part = (typeof PARTS)[number];
/**
 * What runs without part flags, within three minutes on two cores from a fresh clone (C builds
 * included); --full adds the rest: interest churn, files and FTP are behind their own flags.
 */
export const DEFAULT_PARTS: Part[] = ['scaling', 'micro', 'echo', 'threads'];
/** What --full runs: the soak part (minutes per server) only when asked for (`--soak`, `npm run bench:soak`). */
export const FULL_PARTS: Part[] = PARTS.filter((p) => p !== 'soak');

export interface SuiteOptions {
  parts: Part[];
  full: boolean;
  scaling: ScalingOptions;
  micro: MicroOptions;
  echo: EchoOptions;
  threads: ThreadsOptions;
  interest: InterestOptions;
  files: FilesOptions;
  ftp: FtpOptions;
  soak: SoakOptions;
  /** Where results.json, the CSV files and the charts go. */
  outDir: string;
  /** Also write the JSON record here. */
  jsonFile?: string;
  charts: boolean;
  progress: boolean;
  /** Where the tables go (stdout by default). */
  print: (text: string) => void;
}

/**
 * The default suite covers every part in under three minutes on two cores; --full sweeps wider and
 * longer. N beyond the descriptor limit is attempted and reported as skipped, never hidden.
 */
export function presetOptions(full: boolean): Pick<SuiteOptions, 'scaling' | 'micro' | 'echo' | 'interest' | 'files' | 'ftp' | 'threads' | 'soak'> {
  return {
    scaling: {
      n: full ? [10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000] : [10, 100, 1000, 10000],
      a: full ? [1, 10, 100, 1000] : [1, 100],
      mechanisms: [...SCALING_MECHANISMS],
      repeat: 3,
      timeMs: full ? 200 : 40,
      warmupRounds: 10,
      transport: 'udp',
    },
    micro: { repeat: 3, timeMs: full ? 1000 : 200 },
    echo: {
      servers: full ? [...ECHO_SERVERS] : [...DEFAULT_ECHO_SERVERS],
      // C = 1 (one message in flight: where embedded servers live, and where a wake-up costs most) and
      // C = 100 (a busy server); --full adds 10 and 1000.
      connections: full ? [1, 10, 100, 1000] : [1, 100],
      sizes: full ? [64, 4096] : [64],
      depth: 1,
      repeat: 3,
      warmupMs: full ? 500 : 200,
      durationMs: full ? 3000 : 800,
      pin: true,
      syscalls: true,
      syscallConnections: 100,
      syscallSize: 64,
      syscallDurationMs: 1000,
    },
    // Interest churn: epoll level- vs edge-triggered, direct vs queued, at C = 100 and 1000, and D = 8.
    interest: {
      connections: [100, 1000],
      deepDepth: 8,
      repeat: 3,
      warmupMs: full ? 500 : 200,
      durationMs: full ? 3000 : 700,
      pin: true,
      syscalls: true,
      syscallDurationMs: full ? 1000 : 700,
    },
    files: filesPreset(full),
    // ftpbench's steps with N = 1000 clients and 1 MiB each with --full (N = 50 and 4 MiB alone), and
    // whole-file transfers of 1 GiB with every client (5 interleaved rounds with --full, 3 alone).
    ftp: {
      servers: [...FTP_SERVERS],
      clients: full ? 1000 : 50,
      fileSize: (full ? 1 : 4) * 2 ** 20,
      transferSize: (full ? 256 : 64) * 2 ** 20,
      seconds: full ? 2 : 1,
      pin: true,
      wholeClients: [...TRANSFER_CLIENTS],
      wholeSize: 2 ** 30,
      wholeRounds: full ? 5 : 3,
    },
    threads: threadsPreset(full),
    soak: soakPreset(),
  };
}

/**
 * The threads part: short in the default suite (one repetition, shorter cells, a small cost
 * table); complete with `iomux bench --threads` or --full.
 */
export function threadsPreset(complete: boolean): ThreadsOptions {
  return {
    counts: [1, 2],
    kinds: complete ? [...THREADS_SERVER_KINDS] : ['c', 'node-cluster', 'iomux-reuseport', 'iomux-exclusive'],
    // The default suite's short version at C = 100 alone (its budget); complete: C = 100 and 1000.
    connections: complete ? [100, 1000] : [100],
    size: 64,
    depth: 1,
    repeat: complete ? 3 : 1,
    warmupMs: complete ? 300 : 200,
    durationMs: complete ? 1000 : 700,
    pin: true,
    costs: complete
      ? { reactorConnections: 2000, threadConnections: 32, samples: 200, startups: 20 }
      : { reactorConnections: 500, threadConnections: 8, samples: 50, startups: 5 },
  };
}

/**
 * The file part: the 1 GiB and 100 concurrent 10 MiB uploads in --full and when the part is
 * asked for by itself (`iomux bench --files`); 128 MiB and 100 uploads of 1 MiB inside the default
 * suite, which must stay within its three minutes.
 */
export function filesPreset(large: boolean): FilesOptions {
  return large
    ? { sizeMiB: 1024, repeat: 3, uploads: 100, uploadMiB: 10 }
    : { sizeMiB: 128, repeat: 3, uploads: 100, uploadMiB: 1 };
}

/** bench/results in a clone (`npm run bench`); from an installed package, iomux-bench in the current folder. */
export function defaultOutDir(): string {
  return installationOf(path.resolve(__dirname, '..', '..')).kind === 'clone' ? 'bench/results' : 'iomux-bench';
}

