export { EchoServer } from './server';
export type { EchoServerOptions, EchoStats, WriteStrategy } from './server';
