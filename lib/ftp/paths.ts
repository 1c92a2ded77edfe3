/**
 * Path confinement: every path a client names resolves inside its home.
 *
 * The client sees a virtual tree rooted at '/' (its home). A name is resolved in two steps:
 * - lexically: against the working directory, with '.' and '..' folded (`..` above '/' stays at
 *   '/'), so no chain of `..` and no absolute path leaves the tree;
 * - on disk: the real path (symlinks followed) of what is used must be the home or below it. A
 *   symlink inside the home that points outside it is refused, as is a path through one.
 *
 * Operations that act on a name itself (DELE, RMD, RNFR, RNTO, MKD, STOR of a new file) check the
 * real path of its parent and never follow the last component; operations that use what a name
 * leads to (RETR, CWD, LIST, SIZE, STOR over an existing file) check the whole real path, then open
 * it with O_NOFOLLOW so that a link swapped in after the check is refused, not followed.
 *
 * Paths here are strings in the escaped form of names.ts (bytes that are not UTF-8 kept one-to-one):
 * every file-system call takes `toDisk(path)`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromDisk, toDisk } from './names';

/** A path refused or not found, with the FTP reply that says so. */
export class PathError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'PathError';
  }
}

const outside = () => new PathError(550, 'Permission denied: that path leads outside your home.');

/** The FTP reply for a file-system error. */
export function fsErrorReply(err: unknown): PathError {
  if (err instanceof PathError) return err;
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT': return new PathError(550, 'No such file or directory.');
    case 'EEXIST': return new PathError(550, 'File exists.');
    case 'ENOTDIR': return new PathError(550, 'Not a directory.');
    case 'EISDIR': return new PathError(550, 'Is a directory.');
    case 'ENOTEMPTY': return new PathError(550, 'Directory not empty.');
    case 'EACCES': case 'EPERM': return new PathError(550, 'Permission denied.');
    case 'ELOOP': return new PathError(550, 'Too many levels of symbolic links.');
    case 'ENAMETOOLONG': return new PathError(553, 'File name too long.');
    case 'EINVAL': return new PathError(553, 'Invalid name for this operation.');
    case 'ENOSPC': case 'EDQUOT': return new PathError(552, 'Insufficient storage space.');
    case 'EBUSY': return new PathError(450, 'Resource busy.');
    // open(O_WRONLY | O_NONBLOCK) of a FIFO without a reader, or of a device with nothing behind it.
    case 'ENXIO': return new PathError(550, 'Not a regular file.');
    default: return new PathError(451, 'Local error in processing.');
  }
}

/**
 * The virtual path `name` names from the working directory `cwd` (both '/'-rooted): '..' chains and
 * absolute paths stay in the tree. Throws for names no file may have (NUL, CR, LF).
 */
export function resolveVirtual(cwd: string, name: string): string {
  if (/[\0\r\n]/.test(name)) throw new PathError(501, 'Syntax error: NUL, CR and LF are not allowed in names.');
  return path.posix.resolve('/', cwd, name);
}

/**
 * The real path of `file` (symlinks resolved), in the escaped form of names.ts: a path with bytes
 * that are not UTF-8 comes back as it is on disk, not with U+FFFD in their place.
 */
export function realpath(file: string): string {
  // The native realpath(3): fs.realpathSync's JavaScript version turns a Buffer path into a string first.
  return fromDisk(fs.realpathSync.native(toDisk(file), { encoding: 'buffer' }));
}

/** A user's home: the real directory that '/' stands for. */
export class Home {
  /** The home's real path (symlinks resolved once, at login). */
  readonly real: string;

  constructor(directory: string) {
    this.real = realpath(directory);
  }

  /** Whether a real (resolved) path is the home or below it. */
  contains(real: string): boolean {
    return real === this.real || real.startsWith(this.real.endsWith(path.sep) ? this.real : this.real + path.sep);
  }

  /** Where a virtual path lies on disk, lexically (nothing resolved yet). */
  lexical(virtual: string): string {
    return path.join(this.real, virtual);
  }

  /** The real path of something that must exist, checked inside the home. */
  existing(virtual: string): string {
    let real: string;
    try {
      real = realpath(this.lexical(virtual));
    } catch (err) {
      throw fsErrorReply(err);
    }
    if (!this.contains(real)) throw outside();
    return real;
  }

  /**
   * The path of the entry `virtual` names, for acting on the name itself: its parent is resolved
   * and checked; the last component is not followed. '/' (the home itself) is refused.
   */
  entry(virtual: string): string {
    if (virtual === '/') throw new PathError(550, 'Permission denied: that is your home directory.');
    const parent = this.existing(path.posix.dirname(virtual));
    return path.join(parent, path.posix.basename(virtual));
  }

  /**
   * The path to write `virtual` at (STOR, APPE): a new name in a checked parent, or, when the name
   * exists and is a symlink, what it leads to — checked like any existing path.
   */
  writable(virtual: string): string {
    const entry = this.entry(virtual);
    let isLink = false;
    try {
      isLink = fs.lstatSync(toDisk(entry)).isSymbolicLink();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsErrorReply(err);
    }
    return isLink ? this.existing(virtual) : entry;
  }
}
