/**
 * A connection's lifecycle as one explicit state (docs/streams.md, "Lifecycle", draws the table).
 * The two directions close separately (half-close), so the states are the combinations that can
 * occur: our write side open, ending (end() called, the queue flushing) or shut (FIN sent); the read
 * side open, ended (the peer's FIN came) or discarded (close(): input is dropped).
 *
 * Orthogonal to the state, and kept as flags beside it: paused (reading stopped by the user),
 * corked (writes held), and the socket's own condition (full: waiting for writable).
 */
export const enum State {
  /** connect() in progress (or waiting for a host name's address): writes queue, nothing is sent. */
  Connecting,
  /** Both directions open. */
  Open,
  /** The peer finished sending; we may still write. */
  ReadEnded,
  /** end(): flushing, then our side shuts; the peer's bytes are still delivered. */
  Ending,
  /** Our side is shut (FIN sent); the peer's bytes are still delivered until its end. */
  WriteShut,
  /** close() before our side shut: flushing; no more data is delivered. */
  Closing,
  /** Both directions finishing: the peer ended and we flush, then the descriptor closes. */
  Finishing,
  /** close() after our side shut: input is discarded until the peer's end, bounded by lingerMs. */
  Lingering,
  /** The descriptor is closed (cleanly or destroyed). Final. */
  Closed,
}

/** The name of each state, as `Connection.state` reports it. */
export type StateName = 'connecting' | 'open' | 'readEnded' | 'ending' | 'writeShut' | 'closing' | 'finishing' | 'lingering' | 'closed';

export const STATE_NAMES: readonly StateName[] = [
  'connecting', 'open', 'readEnded', 'ending', 'writeShut', 'closing', 'finishing', 'lingering', 'closed',
];

/** write(), end() and sendFile() are accepted: nothing has ended our side. */
export function acceptsWrites(state: State): boolean {
  return state <= State.ReadEnded;
}

/** The peer's bytes reach onData. */
export function deliversData(state: State): boolean {
  return state === State.Open || state === State.Ending || state === State.WriteShut;
}

/** end() or close() was called and the queue is still to be flushed before our side shuts. */
export function flushingToShut(state: State): boolean {
  return state === State.Ending || state === State.Closing || state === State.Finishing;
}

/** end() applied to `state`: where the write side goes. */
export function afterEnd(state: State): State {
  switch (state) {
    case State.Open: return State.Ending;
    case State.ReadEnded: return State.Finishing;
    default: return state;
  }
}

/** close() applied to `state`. */
export function afterClose(state: State): State {
  switch (state) {
    case State.Open:
    case State.Ending: return State.Closing;
    case State.ReadEnded: return State.Finishing;
    case State.WriteShut: return State.Lingering;
    default: return state;
  }
}

/** The peer's end of stream in `state` (Closed: both sides are done). */
export function afterPeerEnd(state: State): State {
  switch (state) {
    case State.Open: return State.ReadEnded;
    case State.Ending:
    case State.Closing: return State.Finishing;
    case State.WriteShut:
    case State.Lingering: return State.Closed;
    default: return state;
  }
}

/** The queue is flushed after end()/close(): our side shuts (Finishing: the descriptor closes). */
export function afterFlushed(state: State): State {
  switch (state) {
    case State.Ending: return State.WriteShut;
    case State.Closing: return State.Lingering;
    case State.Finishing: return State.Closed;
    default: return state;
  }
}
