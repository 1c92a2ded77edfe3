/** Where worker threads find a handler class: a file and an export name (the class says which, see RequestHandlerClass). */
import type { RequestHandlerClass } from './request-handler';

/** The file and export name worker threads load `Handler` from; a clear error when it does not say. */
export function handlerModule(Handler: RequestHandlerClass): { module: string; exportName: string } {
  if (typeof Handler.module !== 'string') {
    throw new TypeError(`ThreadingServer runs ${Handler.name || 'the handler'} on worker threads, which load it from its file: ` +
      'give the class `static module = __filename` (and export it)');
  }
  return { module: Handler.module, exportName: Handler.exportName ?? Handler.name };
}

export function loadHandler(module: string, exportName: string): RequestHandlerClass {
  const exports = require(module) as Record<string, unknown> | RequestHandlerClass;
  const found = typeof exports === 'function' && (exports as RequestHandlerClass).name === exportName
    ? exports : (exports as Record<string, unknown>)[exportName];
  if (typeof found !== 'function') throw new TypeError(`${module} has no export named ${exportName} that is a request handler class`);
  return found as RequestHandlerClass;
}

