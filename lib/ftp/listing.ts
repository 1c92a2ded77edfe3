/**
 * Directory listings: LIST (the `ls -l` lines every client parses), NLST (names), MLSD/MLST
 * (RFC 3659's machine-readable facts), and MDTM's time stamp.
 *
 * A listing shows only what the client can use: a symlink is listed as what it leads to when that
 * is inside the home, and not at all when it leads outside or nowhere; a name holding CR or LF
 * (which no command line can carry) is left out. Times are UTC.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readNames, toDisk } from './names';
import { realpath, type Home } from './paths';

export interface Entry {
  name: string;
  stat: fs.Stats;
}

export const MLST_FACTS = ['type', 'size', 'modify', 'perm', 'unique'] as const;
export type MlstFact = (typeof MLST_FACTS)[number];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SIX_MONTHS_MS = 180 * 24 * 3600 * 1000;

/** What `name` in the real directory `dir` shows as, or null when it is not shown. */
export function entryOf(home: Home, dir: string, name: string): Entry | null {
  if (/[\r\n]/.test(name)) return null;
  const full = path.join(dir, name);
  try {
    let stat = fs.lstatSync(toDisk(full));
    if (stat.isSymbolicLink()) {
      if (!home.contains(realpath(full))) return null;
      stat = fs.statSync(toDisk(full));
    }
    return { name, stat };
  } catch {
    return null; // Gone meanwhile, a dangling link, or not ours to see.
  }
}

/**
 * The entries of the real directory `dir`, sorted by name (RFC 959 suggests sorted listings). Names
 * are read as bytes: one that is not UTF-8 is listed escaped (names.ts), and the server takes it back.
 */
export function readEntries(home: Home, dir: string): Entry[] {
  const entries: Entry[] = [];
  for (const name of readNames(dir).sort()) {
    const entry = entryOf(home, dir, name);
    if (entry !== null) entries.push(entry);
  }
  return entries;
}

function permissions(mode: number): string {
  const type = (mode & fs.constants.S_IFMT) === fs.constants.S_IFDIR ? 'd' : '-';
  let bits = '';
  for (let shift = 6; shift >= 0; shift -= 3) {
    const triple = (mode >> shift) & 7;
    bits += (triple & 4 ? 'r' : '-') + (triple & 2 ? 'w' : '-') + (triple & 1 ? 'x' : '-');
  }
  return type + bits;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** `ls -l`'s date column: "Mon DD HH:MM" within six months, else "Mon DD  YYYY". */
function lsDate(mtime: Date, now: number): string {
  const month = MONTHS[mtime.getUTCMonth()];
  const day = String(mtime.getUTCDate()).padStart(2, ' ');
  if (Math.abs(now - mtime.getTime()) < SIX_MONTHS_MS) return `${month} ${day} ${two(mtime.getUTCHours())}:${two(mtime.getUTCMinutes())}`;
  return `${month} ${day}  ${mtime.getUTCFullYear()}`;
}

/** One LIST line (no line end). Owner and group are shown as "ftp": the host's accounts are not the client's business. */
export function listLine(entry: Entry, now = Date.now()): string {
  const { stat } = entry;
  const size = String(stat.isDirectory() ? 4096 : stat.size).padStart(13, ' ');
  return `${permissions(stat.mode)} ${String(stat.nlink).padStart(3, ' ')} ftp      ftp      ${size} ${lsDate(stat.mtime, now)} ${entry.name}`;
}

/** MDTM's and MLSx's time stamp: YYYYMMDDHHMMSS, UTC. */
export function timeVal(date: Date): string {
  return `${date.getUTCFullYear()}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}`
    + `${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}`;
}

/** The MLSx facts of an entry, in RFC 3659's "fact=value;" form, then a space and `name`. */
export function factLine(entry: Entry, facts: ReadonlySet<MlstFact>, readOnly: boolean, name = entry.name, type?: 'cdir'): string {
  const { stat } = entry;
  const dir = stat.isDirectory();
  let out = '';
  if (facts.has('type')) out += `type=${type ?? (dir ? 'dir' : stat.isFile() ? 'file' : 'OS.unix=other')};`;
  if (facts.has('size') && !dir) out += `size=${stat.size};`;
  if (facts.has('modify')) out += `modify=${timeVal(stat.mtime)};`;
  // What this user may do with it: e CWD, l LIST, c create in, m MKD, d delete, f rename, p delete children; r RETR, a APPE, w STOR.
  if (facts.has('perm')) out += `perm=${dir ? (readOnly ? 'el' : 'elcmdfp') : (readOnly ? 'r' : 'radfw')};`;
  if (facts.has('unique')) out += `unique=${stat.dev.toString(16)}g${stat.ino.toString(16)};`;
  return `${out} ${name}`;
}

/** MLST's default facts, as FEAT advertises them ("type*;size*;..."). */
export function featMlst(enabled: ReadonlySet<MlstFact>): string {
  return `MLST ${MLST_FACTS.map((f) => `${f}${enabled.has(f) ? '*' : ''};`).join('')}`;
}
