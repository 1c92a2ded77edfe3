/**
 * The one place that knows the addon's shape. Everything above this file uses these types;
 * nothing else loads the binary.
 *
 * Conventions of the bindings (see docs/ARCHITECTURE.md):
 * - descriptors are plain numbers;
 * - hot paths (`recv`, `send`, `writev`, `sendfile`, `recvfile`, `accept`, `sendto`) return -1 for "would block" instead of throwing;
 * - a failing call throws an Error with `code` ('EBADF'), `errno` (negative, as Node's) and `syscall`;
 * - wrong argument types throw TypeError, out-of-range values RangeError;
 * - waits take milliseconds (fractions round up; negative, null, undefined or Infinity = forever)
 *   and retry EINTR with the remaining time.
 */
import * as path from 'node:path';

// node-gyp-build ships no types: path() takes the package root and names the addon file that matches.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild: { path(root: string): string } = require('node-gyp-build');

/** Any memory a binding can read from or write into. */
export type BufferLike = ArrayBufferView | ArrayBuffer;

/** An address as `getsockname`, `getpeername` and `accept` report it. Unix sockets: `address` is the path. */
export interface SocketAddress {
  family: 'IPv4' | 'IPv6' | 'unix';
  address: string;
  port: number;
}

export interface Linger {
  onoff: boolean;
  /** Seconds. */
  linger: number;
}

export interface AcceptedSocket {
  fd: number;
  peer: SocketAddress;
}

export interface Datagram {
  /** How many bytes were written into the buffer. */
  bytes: number;
  /** The sender, or null when the kernel names none: a connected stream socket, an unbound Unix datagram sender. */
  peer: SocketAddress | null;
}

export type SocketOptionValue = number | boolean | string | Linger;

export interface Constants {
  readonly [name: string]: number | Readonly<Record<string, number>> | undefined;
  readonly AF_INET: number;
  readonly AF_INET6: number;
  readonly AF_UNIX: number;
  readonly AF_UNSPEC: number;
  readonly SOCK_STREAM: number;
  readonly SOCK_DGRAM: number;
  readonly SOL_SOCKET: number;
  readonly IPPROTO_IP: number;
  readonly IPPROTO_IPV6: number;
  readonly IPPROTO_TCP: number;
  readonly IPPROTO_UDP: number;
  readonly SO_REUSEADDR: number;
  readonly SO_KEEPALIVE: number;
  readonly SO_BROADCAST: number;
  readonly SO_LINGER: number;
  readonly SO_RCVBUF: number;
  readonly SO_SNDBUF: number;
  readonly SO_RCVLOWAT: number;
  readonly SO_SNDLOWAT: number;
  readonly SO_RCVTIMEO: number;
  readonly SO_SNDTIMEO: number;
  readonly SO_ERROR: number;
  readonly SO_TYPE: number;
  readonly SO_OOBINLINE: number;
  readonly TCP_NODELAY: number;
  readonly IPV6_V6ONLY: number;
  readonly IP_TTL: number;
  readonly SHUT_RD: number;
  readonly SHUT_WR: number;
  readonly SHUT_RDWR: number;
  readonly MSG_PEEK: number;
  readonly MSG_OOB: number;
  readonly MSG_WAITALL: number;
  readonly POLLIN: number;
  readonly POLLOUT: number;
  readonly POLLPRI: number;
  readonly POLLERR: number;
  readonly POLLHUP: number;
  readonly POLLNVAL: number;
  readonly POLLRDNORM: number;
  readonly POLLWRNORM: number;
  /** Bytes in one pollfd entry (8 on POSIX, 16 for Windows' WSAPOLLFD). */
  readonly POLLFD_SIZE: number;
  /** Byte offset of `events` in a pollfd entry; `revents` follows it. */
  readonly POLLFD_EVENTS_OFFSET: number;
  readonly FD_SETSIZE: number;
  /** The most chunks one `writev` sends (Linux's IOV_MAX, 1024; the same number on Windows). */
  readonly IOV_MAX: number;
  /** errno names to their (positive) values, like `os.constants.errno`. */
  readonly errno: Readonly<Record<string, number>>;
  // Present where the platform has them (Linux has all of these).
  readonly SOCK_NONBLOCK?: number;
  readonly SOCK_CLOEXEC?: number;
  readonly SO_REUSEPORT?: number;
  readonly SO_DOMAIN?: number;
  readonly SO_BINDTODEVICE?: number;
  readonly TCP_CORK?: number;
  readonly POLLRDHUP?: number;
  readonly MSG_NOSIGNAL?: number;
  readonly MSG_DONTWAIT?: number;
  readonly EPOLLIN?: number;
  readonly EPOLLOUT?: number;
  readonly EPOLLPRI?: number;
  readonly EPOLLERR?: number;
  readonly EPOLLHUP?: number;
  readonly EPOLLRDHUP?: number;
  readonly EPOLLET?: number;
  readonly EPOLLONESHOT?: number;
  readonly EPOLLWAKEUP?: number;
  readonly EPOLLEXCLUSIVE?: number;
  readonly EPOLL_CTL_ADD?: number;
  readonly EPOLL_CTL_MOD?: number;
  readonly EPOLL_CTL_DEL?: number;
  readonly EPOLL_CLOEXEC?: number;
}

/** The socket and readiness calls every platform has. */
export interface Binding {
  readonly constants: Constants;
  readonly platform: 'linux' | 'win32' | 'posix';

  /** A new descriptor, always close-on-exec; `type` may carry SOCK_NONBLOCK. */
  socket(domain: number, type: number, protocol?: number): number;
  /** Two connected descriptors (POSIX only). */
  socketpair?(domain: number, type: number, protocol?: number): [number, number];
  bind(fd: number, host: string, port: number): void;
  bind(fd: number, path: string): void;
  listen(fd: number, backlog?: number): void;
  /** The new connection's descriptor (non-blocking unless asked otherwise), or -1 if none is waiting. */
  accept(fd: number, nonBlocking?: boolean): number;
  /** Like `accept`, with the peer's address; null if none is waiting. */
  acceptWithAddress(fd: number, nonBlocking?: boolean): AcceptedSocket | null;
  /** true: connected; false: a non-blocking connect is in progress (wait for writable, read SO_ERROR). */
  connect(fd: number, host: string, port: number): boolean;
  connect(fd: number, path: string): boolean;
  /** Bytes received (0 = end of stream), or -1 if nothing is there yet. */
  recv(fd: number, buffer: BufferLike, offset?: number, length?: number, flags?: number): number;
  /** Bytes sent, or -1 if the send buffer is full. Never raises SIGPIPE. */
  send(fd: number, buffer: BufferLike, offset?: number, length?: number, flags?: number): number;
  /**
   * Sends `chunks[first .. first + count)` (defaults: from 0, to the end) in one system call
   * (sendmsg, WSASend on Windows), the first of them from byte `firstOffset`: how a queue resends the
   * unsent rest of its head chunk. Bytes sent (a partial count when the send buffer fills), or -1 if
   * it is full. At most `constants.IOV_MAX` chunks go per call: with more, the first IOV_MAX are sent
   * and the count says how far it got, so the caller loops. Empty chunks are fine. Never raises
   * SIGPIPE. Only the chunks a call sends are read (and type-checked). On a datagram socket the
   * chunks make one datagram, so keep to IOV_MAX there.
   */
  writev(fd: number, chunks: readonly ArrayBufferView[], first?: number, count?: number, firstOffset?: number): number;
  /**
   * Linux only: up to `length` bytes of file `inFd` from `offset` to `outFd` (usually a socket),
   * copied inside the kernel; the file position is neither used nor moved. sendfile(2) is called
   * with at most `chunk` bytes at a time (default: all of `length`; the kernel's own cap is
   * 0x7ffff000) until `length` bytes are sent, `outFd` is full or the file ends. Bytes sent, 0 when
   * `offset` is at or past the end of the file, or -1 when `outFd` would block before a byte went;
   * an error after some bytes went is thrown by the next call. Never raises SIGPIPE. An offset past
   * the largest file the file system allows is EOVERFLOW; a socket (or pipe) as `inFd` is ESPIPE.
   */
  sendfile?(outFd: number, inFd: number, offset: number, length: number, chunk?: number): number;
  /**
   * Linux only, the reverse of `sendfile`: up to `length` (≥ 1) bytes from `inFd` (usually a socket)
   * into file `outFd` at `offset`, inside the kernel: splice(2) into `pipe` (from `pipe()`, empty),
   * then from it into the file, until `length` bytes moved, `inFd` would block or ends. Bytes
   * written, 0 at `inFd`'s end of stream, or -1 when it would block before a byte came. The file
   * position is neither used nor moved; an O_APPEND `outFd` is EINVAL. An error is thrown at once,
   * even after some bytes moved (`syscall` 'splice'), with `fd` naming the side that failed: `inFd`
   * (the connection) or `outFd` (the file: ENOSPC, EDQUOT, EFBIG ...); the pipe may then hold bytes.
   */
  recvfile?(outFd: number, inFd: number, offset: number, length: number, pipe: readonly [number, number]): number;
  /**
   * Linux only: a pipe for `recvfile`, [readFd, writeFd], both ends non-blocking and close-on-exec;
   * with `size`, F_SETPIPE_SZ asks for that capacity (a refusal keeps the default, 64 KiB).
   */
  pipe?(size?: number): [number, number];
  recvfrom(fd: number, buffer: BufferLike, offset?: number, length?: number, flags?: number): Datagram | null;
  sendto(fd: number, buffer: BufferLike, offset: number | undefined, length: number | undefined,
    flags: number | undefined, host: string, port: number): number;
  sendto(fd: number, buffer: BufferLike, offset: number | undefined, length: number | undefined,
    flags: number | undefined, path: string): number;
  shutdown(fd: number, how: number): void;
  close(fd: number): void;
  setNonBlocking(fd: number, nonBlocking: boolean): void;
  getNonBlocking(fd: number): boolean;
  getsockname(fd: number): SocketAddress;
  getpeername(fd: number): SocketAddress;
  /** SO_LINGER takes a Linger, SO_RCVTIMEO/SO_SNDTIMEO milliseconds, SO_BINDTODEVICE a name; others an int or boolean. */
  setsockopt(fd: number, level: number, option: number, value: SocketOptionValue): void;
  getsockopt(fd: number, level: number, option: number): number | string | Linger;

  /** Python's select: the ready subsets of each list. Throws RangeError for any fd >= FD_SETSIZE. */
  select(read: number[] | null, write: number[] | null, except: number[] | null,
    timeoutMs?: number | null): [number[], number[], number[]];
  /** select() over a pollfd array (as `poll` takes), filling revents; returns how many are ready. */
  selectPollfds(pollfds: ArrayBufferView | ArrayBuffer, nfds: number, timeoutMs?: number | null): number;
  /** poll() on a caller-owned pollfd array, in place; returns how many entries have revents. */
  poll?(pollfds: ArrayBufferView | ArrayBuffer, nfds: number, timeoutMs?: number | null): number;
  /** WSAPoll (Windows), with the same contract as `poll`. */
  wsapoll?(pollfds: ArrayBufferView | ArrayBuffer, nfds: number, timeoutMs?: number | null): number;

  /** Linux only. Always close-on-exec. */
  epoll_create1?(flags?: number): number;
  /** `data` (default: fd) is the 32-bit token epoll_wait reports for this descriptor. */
  epoll_ctl?(epfd: number, op: number, fd: number, events?: number, data?: number): void;
  /** Fills `events` with [data, events] pairs; returns how many. */
  epoll_wait?(epfd: number, events: Int32Array | Uint32Array, maxevents: number, timeoutMs?: number | null): number;

  /** Linux only: an io_uring for readiness (multishot POLL_ADD); see IoUringBinding. */
  readonly IoUring?: IoUringConstructor;

  readonly WaitThread: WaitThreadConstructor;
  /** Absent from builds that cannot reach libuv (cmake-js, the Windows cross build): docs/ARCHITECTURE.md. */
  readonly LoopWatcher?: LoopWatcherConstructor;

  /** TLS by Node's own OpenSSL (native/tls.cc); absent where `tlsUnavailable` says why. */
  readonly TlsContext?: TlsContextConstructor;
  readonly TlsEngine?: TlsEngineConstructor;
  /** A new key and a certificate for it, as PEM (native/tls_cert.cc); with TlsContext. */
  readonly makeCertificate?: (options: CertificateInit) => { cert: string; key: string };
  readonly tlsUnavailable?: string;
  /** The OpenSSL functions the addon calls, each found in this process before TLS was offered. */
  readonly tlsFunctions?: readonly string[];
  readonly opensslVersion?: string;
}

/** What makeCertificate puts in a certificate; every field is checked (TypeError, RangeError). */
export interface CertificateInit {
  /** DNS names ("*." allowed first) and numeric addresses: subjectAltName. 1 to 100; an authority may have none. */
  names?: readonly string[];
  /** The subject's CN, 1 to 64 bytes. Default: the first name. */
  commonName?: string;
  /** Valid from a minute ago for this many days, 1 to 36500. Default 365. */
  days?: number;
  /** 'ec' (P-256, the default) or 'rsa' (2048 bits). */
  key?: 'ec' | 'rsa';
  /** An authority (CA:TRUE, pathlen 0, keyCertSign) instead of a server certificate (CA:FALSE, serverAuth). */
  ca?: boolean;
  /** The authority that signs it (PEM); without it the certificate signs itself. */
  issuer?: { cert: string | Buffer; key: string | Buffer };
}

export interface TlsContextInit {
  server: boolean;
  /** PEM: the certificate, then its chain. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** PEM: the authorities a peer's certificate is checked against. */
  ca?: string | Buffer;
  /** Check the peer's certificate (default: a client does, a server does not ask for one). */
  verifyPeer?: boolean;
  /** TLS1_2_VERSION (0x303) or TLS1_3_VERSION (0x304). Default TLS 1.2. */
  minVersion?: number;
  /** How long a session may be resumed, in seconds. */
  sessionTimeout?: number;
}

/** An SSL_CTX: certificates, trust, and a server's session cache and ticket keys. */
export type TlsContextBinding = object;

export interface TlsContextConstructor {
  new(init: TlsContextInit): TlsContextBinding;
}

export interface TlsEngineInit {
  /** Server: only sessions made under the same bytes (1-32) may be resumed on this connection. */
  sessionIdContext?: Uint8Array;
  /** Server: TLS 1.3 session tickets sent after the handshake (OpenSSL's default: 2). */
  tickets?: number;
  /** Client: SNI. */
  servername?: string;
  /** Client: the DNS name, or the numeric address, the server's certificate must carry. */
  host?: string;
  ip?: string;
  /** Client: resume this session (DER, from another engine's `session`). */
  session?: Uint8Array;
}

/**
 * One TLS connection on memory BIOs: ciphertext in by feed(), out by pull(); plaintext by read()
 * and write(). Never touches a descriptor. Failures throw an Error with code ('ERR_SSL_...', or
 * Node's name of a failed certificate check), library and reason.
 */
export interface TlsEngineBinding {
  /** true once complete; false while it waits for the peer. */
  handshake(): boolean;
  feed(buffer: BufferLike, offset?: number, length?: number): void;
  /** Plaintext bytes decrypted (0: none until more is fed), or -1 once the peer's close_notify came. */
  read(buffer: BufferLike, offset?: number, length?: number): number;
  /** Plaintext bytes taken: all of them once the handshake is complete, 0 before. */
  write(buffer: BufferLike, offset?: number, length?: number): number;
  /** pread + encrypt, at most 256 KiB: bytes taken from the file, 0 at its end (and before the handshake). */
  writeFile(fd: number, position: number, length: number): number;
  /** Ciphertext bytes copied out for sending. */
  pull(buffer: BufferLike, offset?: number, length?: number): number;
  /** Queues our close_notify; true if the peer's had come already. */
  shutdown(): boolean;
  /** Releases the TLS state now. Idempotent; every other call throws after it. */
  free(): void;
  /** Ciphertext bytes waiting for pull(). */
  readonly pending: number;
  readonly handshakeDone: boolean;
  readonly protocol: string | null;
  readonly cipher: string | null;
  readonly sessionReused: boolean;
  /** DER. */
  readonly peerCertificate: Buffer | null;
  /** DER, for TlsEngineInit.session. */
  readonly session: Buffer | null;
  readonly closeNotifyReceived: boolean;
}

export interface TlsEngineConstructor {
  new(context: TlsContextBinding, init?: TlsEngineInit): TlsEngineBinding;
}

/** Which wait a WaitThread performs: the reactor's own mechanism. */
export enum WaitMechanism {
  Poll = 0,
  Select = 1,
  /** poll() on the epoll descriptor itself, which is readable while any event is pending. */
  Epoll = 2,
}

/**
 * A helper thread that blocks in a wait and calls `onReady(errno)` on the JavaScript thread when
 * it ends (0 = ready or timed out). One wait at a time: arm, get called back, arm again.
 * While referenced and armed it keeps the process alive, like a Node handle.
 */
export interface WaitThread {
  /** Starts a wait on a snapshot of `pollfds` (Poll, Select) or on `epfd` (Epoll). */
  arm(mechanism: WaitMechanism, pollfds: ArrayBuffer | ArrayBufferView | null, nfds: number, epfd: number,
    timeoutMs: number | null): void;
  /** Ends the wait in flight early (its onReady still runs). */
  wake(): void;
  ref(): void;
  unref(): void;
  /** Stops and joins the thread, dropping a wake-up not yet delivered: no onReady after it. Idempotent. */
  close(): void;
}

export interface WaitThreadConstructor {
  new(onReady: (errno: number) => void): WaitThread;
}

/**
 * Node's own event loop watching one pollable descriptor (the epoll descriptor: readable while any
 * of its events is pending) with a uv_poll_t, plus a uv_timer_t: `onReady(errno, timedOut)` runs on
 * the JavaScript thread, in a callback scope, when the descriptor is readable (the poll stays
 * started: a level-triggered watch) or the timer expires. No thread. Like a Node handle while open:
 * it keeps the process alive unless unref'd, and it lives whatever JavaScript holds.
 */
export interface LoopWatcher {
  /** onReady(0, true) after `timeoutMs` (fractions round up), unless set again first; null stops the timer. */
  setTimer(timeoutMs: number | null): void;
  ref(): void;
  unref(): void;
  /** Closes both handles; idempotent. No onReady runs after it. */
  close(): void;
}

export interface LoopWatcherConstructor {
  /** Throws a system error (syscall 'uv_poll_init') for a descriptor epoll cannot watch or this loop already watches. */
  new(fd: number, onReady: (errno: number, timedOut: boolean) => void): LoopWatcher;
}

/**
 * One io_uring, set up through the raw system calls with its rings mapped once. pollAdd, pollRemove
 * and pollUpdate only queue an entry in the shared submission ring (no system call unless it is
 * full); wait() submits what is queued and waits in the same io_uring_enter.
 */
export interface IoUringBinding {
  /** The ring's descriptor, readable (poll/epoll) while a completion waits in the ring. */
  readonly fd: number;
  /** io_uring_params.features (IORING_FEAT_*). */
  readonly features: number;
  readonly sqEntries: number;
  readonly cqEntries: number;
  /** IORING_SETUP_DEFER_TASKRUN is on: completion work runs only inside wait() (and submit's enter). */
  readonly deferTaskrun: boolean;
  /** A POLL_ADD for `events` (POLLIN, POLLOUT...) whose completions carry `data` (32 bits); flags: IoUring.POLL_ADD_MULTI. */
  pollAdd(fd: number, events: number, data: number, flags?: number): void;
  /**
   * IORING_OP_POLL_REMOVE of the poll whose completions carry `target`. The removal's own completion carries
   * `data`; without `data` it posts one only on failure (IOSQE_CQE_SKIP_SUCCESS), with data 0.
   */
  pollRemove(target: number, data?: number): void;
  /**
   * IORING_OP_ASYNC_CANCEL of the request whose completions carry `target`: unlike POLL_REMOVE (which
   * fails with -EALREADY, leaving a multishot poll armed, while a wake-up of it is being handled), it
   * always ends the poll (-ECANCELED). Its own completion as for pollRemove.
   */
  cancel(target: number, data?: number): void;
  /** Changes a live poll in place; flags: POLL_UPDATE_EVENTS | POLL_UPDATE_USER_DATA (| POLL_ADD_MULTI to stay multishot). */
  pollUpdate(target: number, newData: number, events: number, flags: number, data?: number): void;
  /** Submits what is queued without waiting; returns how many entries the kernel took. */
  submit(): number;
  /**
   * Submits what is queued and waits up to `timeoutMs` for a completion (none waited for when one is
   * there already, or timeoutMs is 0), then fills `events` with up to `maxevents` [data, result] pairs:
   * result is the poll mask, with IoUring.MORE set while a multishot poll goes on, or -errno.
   */
  wait(events: Int32Array, maxevents: number, timeoutMs?: number | null): number;
  /** Entries queued and not yet submitted. */
  pending(): number;
  /** Completions the kernel ever had to hold back because the completion ring was full. */
  overflow(): number;
  /** Unmaps the rings and closes the descriptor (every poll ends). Idempotent. */
  close(): void;
}

export interface IoUringConstructor {
  /**
   * io_uring_setup; throws its system error (ENOSYS, EPERM, EOPNOTSUPP before Linux 5.13).
   * deferTaskrun asks for IORING_SETUP_DEFER_TASKRUN (with SINGLE_ISSUER), where the kernel has it.
   */
  new(sqEntries?: number, cqEntries?: number, deferTaskrun?: boolean): IoUringBinding;
  /** Set in a wait() result while the multishot poll goes on (IORING_CQE_F_MORE). */
  readonly MORE: number;
  readonly POLL_ADD_MULTI: number;
  /** IORING_POLL_ADD_LEVEL (the header's; Linux 6.18 refuses it for POLL_ADD with EINVAL). */
  readonly POLL_ADD_LEVEL: number;
  readonly POLL_UPDATE_EVENTS: number;
  readonly POLL_UPDATE_USER_DATA: number;
}

/** The epoll calls, present on Linux. */
export type EpollBinding = Required<Pick<Binding, 'epoll_create1' | 'epoll_ctl' | 'epoll_wait'>>;

const packageRoot = path.resolve(__dirname, '..', '..');

/**
 * The loaded addon: a prebuild if one matches, else build/Release. IOMUX_ADDON_PATH names another
 * build of the same addon to load instead (the sanitizer builds in build-asan/ and build-tsan/:
 * docs/sanitizers.md).
 */
const addonPath = process.env.IOMUX_ADDON_PATH;
/** @internal The file the addon was loaded from (the tests read its symbols). */
export let addonFile = '';
export const binding: Binding = loadAddon();
export const constants: Constants = binding.constants;

/**
 * The addon, or one line that says why none loads and what fixes it (code ERR_IOMUX_NO_ADDON, the loader's
 * own error as its cause): node-gyp-build's "No native build was found for platform=... abi=... uv=..." names
 * no remedy, and a prebuild the system cannot load (too old a glibc) fails with the dynamic loader's words.
 */
function loaded(file: string): Binding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const addon = require(file) as Binding;
  addonFile = file;
  return addon;
}

function loadAddon(): Binding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (addonPath) return loaded(path.resolve(addonPath));
  let file: string | undefined;
  try {
    file = nodeGypBuild.path(packageRoot);
    return loaded(file);
  } catch (err) {
    const fix = 'npm rebuild iomux builds one here (it needs python3, make and a C++ compiler)';
    const reason = file === undefined
      ? `no addon for ${platformName()} was prebuilt or built here`
      : `the addon ${path.relative(packageRoot, file)} does not load here (${String((err as Error).message).split('\n')[0]})`;
    throw Object.assign(new Error(`iomux: ${reason}: ${fix}`), { code: 'ERR_IOMUX_NO_ADDON', cause: err });
  }
}

/** linux-x64, or linux-x64 (musl), as prebuilds are told apart. */
function platformName(): string {
  const header = process.platform === 'linux' ? (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header : undefined;
  return `${process.platform}-${process.arch}${header && header.glibcVersionRuntime === undefined ? ' (musl)' : ''}`;
}

export function hasEpoll(b: Binding = binding): b is Binding & EpollBinding {
  return typeof b.epoll_wait === 'function';
}
