/**
 * The tools' packages (commander, the benchmark's tables, progress bars and charts) are optional peer
 * dependencies: `npm install iomux` leaves them out, because a server that embeds the library needs none of
 * them. Before a command loads, the packages it needs are looked up; a missing one is one line that names it
 * and the command that installs it, and exit code 1, rather than a stack trace from deep in a module.
 */

/** What each command needs beyond the library. Every command needs commander, which parses its arguments. */
export const COMMAND_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  bench: ['benchmark', 'cli-progress', 'cli-table3', 'vega', 'vega-lite'],
  files: ['cli-progress'],
};

/** The subcommand in `iomux <args>`: the first argument that is not an option (the program's options take no value). */
export function commandOf(args: readonly string[]): string | undefined {
  return args.find((arg) => !arg.startsWith('-'));
}

/** The packages a command needs, commander first. */
export function packagesOf(command: string | undefined): string[] {
  const own = command !== undefined && Object.hasOwn(COMMAND_PACKAGES, command) ? COMMAND_PACKAGES[command] : [];
  return ['commander', ...own];
}

/** Those of `names` that do not resolve from the tools' own folder (where their imports resolve from). */
export function missingPackages(names: readonly string[]): string[] {
  return names.filter((name) => {
    try {
      require.resolve(name);
      return false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return true;
      throw err;
    }
  });
}

/**
 * The one line: `iomux bench needs vega, vega-lite: npm install vega@^5.33.1 vega-lite@^5.23.0`. The ranges
 * are the devDependencies', the versions the tools are tested with; the peer ranges are `*`, because an
 * optional peer whose range a project's own copy misses (commander 12 beside ^14) fails the whole install.
 */
export function missingMessage(command: string | undefined, missing: readonly string[]): string {
  const tested = (require('../../package.json') as { devDependencies?: Record<string, string> }).devDependencies ?? {};
  const install = missing.map((name) => (tested[name] ? `${name}@${tested[name]}` : name));
  return `iomux${command !== undefined && Object.hasOwn(COMMAND_PACKAGES, command) ? ` ${command}` : ''} needs ${missing.join(', ')}: `
    + `npm install ${install.join(' ')}`;
}

/** Returns if every package `command` needs is there; otherwise prints the one line and exits with 1. */
export function ensurePackages(command: string | undefined): void {
  const missing = missingPackages(packagesOf(command));
  if (missing.length === 0) return;
  process.stderr.write(`${missingMessage(command, missing)}\n`);
  process.exit(1);
}
