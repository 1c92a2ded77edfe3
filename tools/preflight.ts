/**
 * Imported first by cli.ts, so it runs before any module that imports an optional package: the invoked
 * command's packages are there, or one line says how to install them (tools/optional.ts).
 */
import { commandOf, ensurePackages } from './optional';

ensurePackages(commandOf(process.argv.slice(2)));
