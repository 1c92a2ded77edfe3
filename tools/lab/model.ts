/**
 * The readiness lab's data model: what a scenario records and what `iomux trace --json` prints.
 * Everything here is plain data so a report survives JSON.stringify (and a worker's postMessage).
 */

/** The mechanisms the lab compares, in the order it shows them. */
export type MechanismName = 'select' | 'poll' | 'epoll-lt' | 'epoll-et' | 'epoll-oneshot' | 'io_uring';

/**
 * Readiness as names, the same for every mechanism so traces compare side by side. select() only says
 * readable / writable / exceptional, which the lab shows as IN / OUT / PRI. END is io_uring's: the
 * completion came without IORING_CQE_F_MORE, so the multishot poll is over until armed again.
 */
export type EventName = 'IN' | 'PRI' | 'OUT' | 'ERR' | 'HUP' | 'RDHUP' | 'NVAL' | 'END';

/** One mechanism, configured: a column of the side-by-side comparison. */
export interface Variant {
  mechanism: MechanismName;
  /** Ask for peer-half-close reports (EPOLLRDHUP / POLLRDHUP); select has no such thing. */
  rdhup: boolean;
  /** EPOLLEXCLUSIVE (epoll only). */
  exclusive: boolean;
  /** interest-churn: interest changes applied just before the next wait, not at once (epoll-lt). */
  batched?: boolean;
  /** io_uring: completion ring entries (multishot-end makes it small). Default: the kernel's, for 64 entries. */
  cqEntries?: number;
  /** Ask for urgent-data reports too (EPOLLPRI / POLLPRI). */
  pri?: boolean;
  /** short-read: a Unix stream socket pair instead of loopback TCP. */
  unix?: boolean;
}

/**
 * wake: a wait reported readiness and the handler acted; step: the script did something (the peer
 * sent, a client connected); quiet: a bounded wait reported nothing; stall: the same, while work remained.
 */
export type RowKind = 'wake' | 'step' | 'quiet' | 'stall';

/**
 * One system call the handler made while handling a wake-up, kept as data so the picture can draw it.
 * `result`: recv/send: bytes moved, 0 for recv's end of stream; accept: 1 connection; -1: EAGAIN.
 * interest: 1 if the change cost a system call (EPOLL_CTL_MOD, a new POLL_ADD), 0 if it changed memory only.
 */
export interface Call {
  op: 'recv' | 'send' | 'accept' | 'interest';
  result: number;
  /** The call failed with this error code (e.g. ECONNRESET); result is then -1. */
  error?: string;
  /** interest: what changed, in a few words. */
  note?: string;
}

export interface Row {
  kind: RowKind;
  /** Milliseconds since this trace started. */
  t: number;
  /** The descriptor the row is about, or null. */
  fd: number | null;
  /** What the wait reported (empty unless kind is 'wake'). */
  events: EventName[];
  /** What happened, in words. */
  action: string;
  /** Bytes (or connections, in accept-storm) the action moved, or null. */
  bytes: number | null;
  /** thundering-herd only: the worker thread (1-based) that woke. */
  worker?: number;
  /** wake: the handler's system calls, in order. */
  calls?: Call[];
  /** step: a label of a few words for the picture (the action says it in full). */
  mark?: string;
  /** quiet, stall: bytes (or connections) still unread when the wait gave up: stranded, if nothing reports them. */
  left?: number;
}

export interface Summary {
  /** How many times a wait reported the watched descriptor (per thread, in thundering-herd). */
  wakeups: number;
  bytesRead: number;
  bytesLeft: number;
  /** The trace ended because a bounded wait reported nothing while work remained. */
  stalled: boolean;
  /** Scenario-specific figures (accepted, still queued, events at FIN, ...). */
  counts: Record<string, number | string>;
  /** Set when the kernel refused the setup itself (e.g. EPOLLEXCLUSIVE with EPOLLONESHOT). */
  error?: string;
}

/** One variant's run of a scenario. */
export interface Trace {
  /** e.g. 'epoll-et', 'poll+rdhup', 'epoll-lt+exclusive'. */
  label: string;
  variant: Variant;
  /** How the descriptor was registered, written as the system call. */
  registration: string;
  /** Which descriptor is which: { watched: 21, peer: 20 }. */
  descriptors: Record<string, number>;
  rows: Row[];
  summary: Summary;
}

/** The scenario parameters, all of them; each scenario says which it takes. */
export interface LabParams {
  /** Bytes the peer sends (partial-read: at once; half-close: before shutting down). */
  bytes: number;
  /** Bytes per read (partial-read) or per message (arrivals, oneshot-rearm). */
  chunk: number;
  /** Read (or accept) until EAGAIN on every wake-up: the correct edge-triggered pattern. */
  drain: boolean;
  /** Re-arm with EPOLL_CTL_MOD after every wake-up (what one-shot needs). */
  rearm: boolean;
  /** Connections (accept-storm: at once; thundering-herd: one at a time). */
  connections: number;
  /** Worker threads (thundering-herd). */
  workers: number;
  /** Messages the peer sends one by one (arrivals, oneshot-rearm). */
  messages: number;
  /** Waits counted in each phase (writable, half-close). */
  waits: number;
  /** Fill / drain cycles (writable). */
  cycles: number;
  /** How long a wait may report nothing before the lab calls it quiet (or a stall). */
  stallMs: number;
  /** thundering-herd: how long to wait for more workers after the first one woke. */
  settleMs: number;
  /** interest-churn: messages the peer keeps in flight. */
  depth: number;
}

/** What `iomux trace` prints, as text or as JSON. */
export interface Report {
  scenario: string;
  /** One line: what the scenario demonstrates. */
  title: string;
  /** What the script does, in a sentence or two, with this run's numbers. */
  setup: string;
  parameters: Partial<LabParams>;
  /** Which summary figures the text table shows, in order. */
  columns: SummaryColumn[];
  /** What a row's count moves: 'bytes', or 'connections' in accept-storm. */
  unit: string;
  /** Where it ran: the readiness semantics are the kernel's, so the kernel release matters. */
  system: { platform: string; release: string; node: string };
  traces: Trace[];
  /** Mechanisms asked for but not available here, with the reason. */
  unavailable: string[];
  /** What the numbers show, computed from this run. */
  conclusions: string[];
}

export interface SummaryColumn {
  /** A Summary field or a key of Summary.counts. */
  key: string;
  label: string;
}

/** A scripted demonstration, run once per variant. */
export interface Scenario {
  name: string;
  /** One line, for `iomux trace --list`. */
  title: string;
  /** The parameters it takes, with their defaults (every scenario also takes `stallMs`). */
  defaults: Partial<LabParams>;
  /** What the script does, with this run's numbers. */
  setup(params: LabParams): string;
  columns: SummaryColumn[];
  /** What a row's count moves (default 'bytes'). */
  unit?: string;
  /** The variants to run for the requested mechanisms (default: one each, no options). */
  variants?(mechanisms: MechanismName[]): Variant[];
  run(variant: Variant, params: LabParams): Promise<Trace>;
  conclude(traces: Trace[], params: LabParams): string[];
}
