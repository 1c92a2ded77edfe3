export { EchoServer } from './server';
export type { EchoServerOptions, EchoStats, WriteStrategy } from './server';
export { ThreadedEchoServer } from './threaded-server';
export type { Balance, ThreadedEchoOptions, ThreadedEchoStats, ThreadStats } from './threaded-server';
