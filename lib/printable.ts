/**
 * Text that came from a client, made safe for a log line. An ESC (or its one-byte form, U+009B CSI)
 * in a user name or a path would otherwise reach the administrator's terminal as a command: colours,
 * a cleared screen, a rewritten title, a forged line. Control characters (C0, DEL, C1), the line and
 * paragraph separators and the bidirectional overrides (which reorder what a reader sees) are written
 * as `\xNN` / `\uNNNN`; the backslash is doubled, so an escape in a log always stands for one byte.
 */
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\\\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escape(char: string): string {
  if (char === '\\') return '\\\\';
  const code = char.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escape);
}
