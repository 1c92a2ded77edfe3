/**
 * The served directory: what a name may open, and where unfinished uploads wait.
 *
 * - Reading (`openSource`): only regular files inside the directory. Names are one path component
 *   (protocol.ts refuses separators, '..', NUL), so the only way out is a symbolic link: the file is
 *   opened with O_NOFOLLOW, and a link is followed only if its target lies in the directory itself.
 *   O_NONBLOCK keeps a FIFO planted in the directory from hanging the server in open().
 * - Uploads (`openPartial`): a partial upload is kept beside its destination, in DIR/.iomux-partial/,
 *   as `<key>.data` (the bytes received so far) and `<key>.json` (the name, size and SHA-256 they
 *   belong to), where the key is the SHA-256 of the name: fixed-length file names, so a 255-byte name
 *   still has room for its partial. Same filesystem as DIR, so `commit` is one atomic rename.
 *   A partial counts only for exactly its (name, size, hash): anything else truncates it first, then
 *   rewrites the metadata (in that order, so a crash between the two leaves an empty partial, never
 *   bytes attributed to the wrong content).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProtocolError } from './protocol';

/** Where partial uploads live, inside the served directory (so a name never refers to it). */
export const PARTIAL_DIR = '.iomux-partial';

export interface Source {
  fd: number;
  size: number;
  mtimeNs: bigint;
  /** Identifies this version of the file for the hash cache. */
  identity: string;
}

interface PartialMeta {
  version: 1;
  name: string;
  size: number;
  sha256: string;
}

export class PartialUpload {
  constructor(
    readonly name: string,
    readonly size: number,
    readonly sha256: Buffer,
    readonly fd: number,
    readonly dataPath: string,
    readonly metaPath: string,
    /** Bytes already held for exactly this (name, size, hash) when it was opened. */
    readonly offset: number,
  ) {}
}

export class FileStore {
  readonly dir: string;
  readonly partialDir: string;

  constructor(dir: string) {
    let resolved: string;
    try {
      resolved = fs.realpathSync(dir);
    } catch (err) {
      throw new Error(`${dir}: ${(err as Error).message}`);
    }
    if (!fs.statSync(resolved).isDirectory()) throw new Error(`${dir} is not a directory`);
    this.dir = resolved;
    this.partialDir = path.join(resolved, PARTIAL_DIR);
    fs.mkdirSync(this.partialDir, { recursive: true, mode: 0o700 });
  }

  /** Opens `name` for reading: a regular file inside the directory, or a ProtocolError saying why not. */
  openSource(name: string): Source {
    this.checkNotReserved(name);
    const full = path.join(this.dir, name);
    let fd: number;
    try {
      fd = openNoFollow(full);
    } catch (err) {
      fd = this.openSymlinkInside(name, full, err);
    }
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      if (!st.isFile()) throw new ProtocolError('FORBIDDEN', `${JSON.stringify(name)} is not a regular file`);
      return { fd, size: Number(st.size), mtimeNs: st.mtimeNs, identity: identityOf(st) };
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /**
   * Refuses an upload that could not be put in place: `name` is a symbolic link (an upload replaces
   * files, never links) or a directory. Nothing is written.
   */
  checkDestination(name: string): void {
    this.checkNotReserved(name);
    const full = path.join(this.dir, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(full);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (st.isSymbolicLink()) throw new ProtocolError('FORBIDDEN', `${JSON.stringify(name)} is a symbolic link${this.linkNote(full)}; an upload never replaces one`);
    if (!st.isFile()) throw new ProtocolError('FORBIDDEN', `${JSON.stringify(name)} exists and is not a regular file`);
  }

  /** The partial upload of exactly (name, size, sha256): resumed if one is held, else started empty. */
  openPartial(name: string, size: number, sha256: Buffer): PartialUpload {
    const key = createHash('sha256').update(name).digest('hex');
    const dataPath = path.join(this.partialDir, `${key}.data`);
    const metaPath = path.join(this.partialDir, `${key}.json`);
    const wanted: PartialMeta = { version: 1, name, size, sha256: sha256.toString('hex') };
    const held = readMeta(metaPath);
    const same = held !== null && held.name === name && held.size === size && held.sha256 === wanted.sha256;
    const fd = fs.openSync(dataPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644);
    try {
      let offset = Number(fs.fstatSync(fd).size);
      if (!same || offset > size) {
        // Never splice: bytes of other content are dropped before the metadata names the new one.
        fs.ftruncateSync(fd, 0);
        offset = 0;
        writeMetaAtomically(metaPath, wanted);
      }
      return new PartialUpload(name, size, sha256, fd, dataPath, metaPath, offset);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /**
   * Puts a verified partial in place (one atomic rename over any older version) and forgets its
   * metadata. Returns the stored file's identity (as openSource would give it), for the hash cache.
   */
  commit(partial: PartialUpload): string {
    fs.renameSync(partial.dataPath, path.join(this.dir, partial.name));
    fs.rmSync(partial.metaPath, { force: true });
    // After the rename: it changes the inode's ctime.
    return identityOf(fs.fstatSync(partial.fd, { bigint: true }));
  }

  /** Drops a partial whose bytes are known to be wrong, so the next attempt starts from 0. */
  discard(partial: PartialUpload): void {
    fs.rmSync(partial.dataPath, { force: true });
    fs.rmSync(partial.metaPath, { force: true });
  }

  private checkNotReserved(name: string): void {
    if (name === PARTIAL_DIR) throw new ProtocolError('BAD_NAME', `refused name ${JSON.stringify(name)}: reserved for partial uploads`);
  }

  /** `full` is a symlink (open said ELOOP): follow it only to a file that is itself in the directory. */
  private openSymlinkInside(name: string, full: string, openError: unknown): number {
    const code = (openError as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ProtocolError('NOT_FOUND', `no file named ${JSON.stringify(name)}`);
    if (code !== 'ELOOP') throw openError;
    let target: string;
    try {
      target = fs.realpathSync(full);
    } catch {
      throw new ProtocolError('FORBIDDEN', `${JSON.stringify(name)} is a symbolic link that leads nowhere`);
    }
    if (path.dirname(target) !== this.dir || path.basename(target) === PARTIAL_DIR) {
      throw new ProtocolError('FORBIDDEN', `${JSON.stringify(name)} is a symbolic link to ${target}, outside the served directory`);
    }
    try {
      // The target is a plain entry of the directory: no link may stand there now either.
      return openNoFollow(target);
    } catch {
      throw new ProtocolError('FORBIDDEN', `${JSON.stringify(name)} is a symbolic link that changed while it was opened`);
    }
  }

  private linkNote(full: string): string {
    try {
      const target = fs.realpathSync(full);
      return path.dirname(target) === this.dir ? '' : ` to ${target}, outside the served directory`;
    } catch {
      return '';
    }
  }
}

/** This version of a file: a change of content changes mtime or ctime (or the inode, when replaced). */
function identityOf(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function openNoFollow(file: string): number {
  return fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
}

function readMeta(metaPath: string): PartialMeta | null {
  try {
    const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8')) as Partial<PartialMeta>;
    if (meta.version !== 1 || typeof meta.name !== 'string' || typeof meta.size !== 'number' || typeof meta.sha256 !== 'string') return null;
    return meta as PartialMeta;
  } catch {
    return null; // Missing or unreadable: the partial cannot be trusted, so it starts over.
  }
}

/** Writes the metadata beside, then renames it into place: a reader sees the old or the new, never half. */
function writeMetaAtomically(metaPath: string, meta: PartialMeta): void {
  const temporary = `${metaPath}.tmp`;
  fs.writeFileSync(temporary, `${JSON.stringify(meta)}\n`, { mode: 0o600 });
  fs.renameSync(temporary, metaPath);
}
