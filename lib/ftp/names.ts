/**
 * File names on disk are bytes; on the wire they are UTF-8 (RFC 2640). A name whose bytes are not
 * UTF-8 (a Latin-1 "é", a stray 0xFF) would otherwise show as U+FFFD, which names nothing: the file
 * could be listed but never retrieved, renamed or deleted, and its directory never removed.
 *
 * So names are carried in an escaped form, one-to-one with their bytes: every byte that is not part
 * of a valid UTF-8 sequence is shown as the character U+EF00 + byte (0x80–0xFF become U+EF80–U+EFFF,
 * private-use characters, as MirBSD's OPTU-8 does). To keep the mapping reversible, a name that
 * really holds one of those characters has that character's three bytes escaped the same way. On the
 * way in, every U+EF80–U+EFFF in a path is that byte again. A client sees, say, "f\uEFFF.txt", shows
 * it as it shows any private-use character, and sends it back to name the same bytes.
 *
 * Paths inside the server are strings in this escaped form; `toDisk` gives what the file system
 * functions take (the string itself when nothing is escaped, else the bytes), `fromDisk` reads back
 * what they return as bytes (readdir, realpath).
 */
import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';

const FIRST_ESCAPE = 0xef80;
const LAST_ESCAPE = 0xefff;
const ESCAPED = /[\uef80-\uefff]/;

/** Bytes of the UTF-8 sequence a lead byte starts (0: it cannot start one). */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/** A name (or path) from the file system's bytes, in the escaped form. */
export function fromDisk(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (isUtf8(bytes) && !ESCAPED.test(text)) return text; // Nearly every name: nothing to escape.
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const byte = bytes[i];
    if (byte < 0x80) {
      out += String.fromCharCode(byte);
      i++;
      continue;
    }
    const length = sequenceLength(byte);
    const sequence = length > 0 && i + length <= bytes.length ? bytes.subarray(i, i + length) : null;
    if (sequence !== null && isUtf8(sequence)) {
      const char = sequence.toString('utf8');
      const code = char.codePointAt(0)!;
      if (code < FIRST_ESCAPE || code > LAST_ESCAPE) {
        out += char;
        i += length;
        continue;
      }
      for (const b of sequence) out += String.fromCharCode(0xef00 + b); // A real U+EFxx: escaped too.
      i += length;
      continue;
    }
    out += String.fromCharCode(0xef00 + byte);
    i++;
  }
  return out;
}

/** A name read as a string that may not be what is on disk: bytes decoded as U+FFFD, or a character to escape. */
const SUSPECT = /[\ufffd\uef80-\uefff]/;

/**
 * The names in the real directory `dir` (escaped form), unsorted. Read as strings — the fast path, for
 * the directories where every name is plain UTF-8 — and again as bytes only when one is not.
 */
export function readNames(dir: string): string[] {
  const names = fs.readdirSync(toDisk(dir));
  if (!names.some((name) => SUSPECT.test(name))) return names;
  return fs.readdirSync(toDisk(dir), { encoding: 'buffer' }).map(fromDisk);
}

/** What the file system functions take for an escaped name or path: the string, or its bytes. */
export function toDisk(name: string): string | Buffer {
  if (!ESCAPED.test(name)) return name;
  const parts: Buffer[] = [];
  let plain = '';
  for (const char of name) {
    const code = char.codePointAt(0)!;
    if (code >= FIRST_ESCAPE && code <= LAST_ESCAPE) {
      if (plain !== '') parts.push(Buffer.from(plain, 'utf8'));
      plain = '';
      parts.push(Buffer.of(code - 0xef00));
    } else {
      plain += char;
    }
  }
  if (plain !== '') parts.push(Buffer.from(plain, 'utf8'));
  return Buffer.concat(parts);
}
