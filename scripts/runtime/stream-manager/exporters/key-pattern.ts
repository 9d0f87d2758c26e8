/**
 * S3 task keys with `!{timestamp:PATTERN}` placeholders (Greengrass Stream Manager SDK,
 * S3ExportTaskDefinition.key: "valid Java DateTimeFormatter strings", e.g.
 * `myKeyNamePrefix/!{timestamp:yyyy/MM/dd}/myKeyNameSuffix`), formatted in UTC.
 *
 * The pattern letters of java.time.format.DateTimeFormatter that make sense in a key:
 *   y, u   year (yy: two digits; y, yyy, yyyy: at least that many digits)
 *   M      month (M, MM; MMM Jan; MMMM January)
 *   d      day of month          D   day of year (D, DD, DDD)
 *   H      hour 0-23             h   hour 1-12        a   AM/PM
 *   m      minute                s   second           S   fraction of second (S..SSS: that many digits)
 *   E      day of week (E, EE, EEE Mon; EEEE Monday)
 * Text in single quotes is literal ('' is one quote); any other character that is not a letter is
 * literal. Other letters (zones, weeks, eras ...) and the reserved `[ ] { } #` are refused: the task
 * fails with a message naming the letter, rather than a key the user did not mean.
 */

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export class KeyPatternError extends Error {}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

function field(letter: string, count: number, d: Date): string {
  switch (letter) {
    case 'y':
    case 'u': {
      const y = d.getUTCFullYear();
      return count === 2 ? pad(y % 100, 2) : pad(y, count);
    }
    case 'M': {
      const m = d.getUTCMonth();
      if (count >= 4) return MONTHS[m]!;
      if (count === 3) return MONTHS[m]!.slice(0, 3);
      return pad(m + 1, count);
    }
    case 'd':
      return checkWidth(letter, count, 2) ?? pad(d.getUTCDate(), count);
    case 'D': {
      const start = Date.UTC(d.getUTCFullYear(), 0, 1);
      return checkWidth(letter, count, 3) ?? pad(Math.floor((d.getTime() - start) / 86_400_000) + 1, count);
    }
    case 'H':
      return checkWidth(letter, count, 2) ?? pad(d.getUTCHours(), count);
    case 'h':
      return checkWidth(letter, count, 2) ?? pad(d.getUTCHours() % 12 === 0 ? 12 : d.getUTCHours() % 12, count);
    case 'a':
      return checkWidth(letter, count, 1) ?? (d.getUTCHours() < 12 ? 'AM' : 'PM');
    case 'm':
      return checkWidth(letter, count, 2) ?? pad(d.getUTCMinutes(), count);
    case 's':
      return checkWidth(letter, count, 2) ?? pad(d.getUTCSeconds(), count);
    case 'S':
      // Milliseconds are all a Date holds; further digits are zeros, as Java prints them for such a time.
      return checkWidth(letter, count, 9) ?? pad(d.getUTCMilliseconds(), 3).padEnd(9, '0').slice(0, count);
    case 'E': {
      const day = DAYS[d.getUTCDay()]!;
      if (count > 4) throw new KeyPatternError(`too many pattern letters '${letter}'`);
      return count === 4 ? day : day.slice(0, 3);
    }
    default:
      throw new KeyPatternError(`pattern letter '${letter}' is not supported here (supported: y u M d D H h a m s S E, 'quoted text')`);
  }
}

function checkWidth(letter: string, count: number, max: number): undefined {
  if (count > max) throw new KeyPatternError(`too many pattern letters '${letter}' (at most ${max})`);
  return undefined;
}

/** Formats one DateTimeFormatter pattern for `at` (UTC). Throws KeyPatternError for what it does not support. */
export function formatTimestamp(pattern: string, at: Date): string {
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === "'") {
      const end = pattern.indexOf("'", i + 1);
      if (end === i + 1) {
        out += "'";
        i += 2;
        continue;
      }
      // Inside quotes '' is a quote; an unterminated quote is an error, as in Java.
      let j = i + 1;
      let text = '';
      for (;;) {
        if (j >= pattern.length) throw new KeyPatternError(`unterminated quote in '${pattern}'`);
        if (pattern[j] === "'") {
          if (pattern[j + 1] === "'") {
            text += "'";
            j += 2;
            continue;
          }
          break;
        }
        text += pattern[j];
        j++;
      }
      out += text;
      i = j + 1;
      continue;
    }
    if (/[A-Za-z]/.test(c)) {
      let n = 1;
      while (pattern[i + n] === c) n++;
      out += field(c, n, at);
      i += n;
      continue;
    }
    if ('[]{}#'.includes(c)) throw new KeyPatternError(`'${c}' is reserved in a DateTimeFormatter pattern`);
    out += c;
    i++;
  }
  return out;
}

const PLACEHOLDER = /!\{timestamp:([^}]*)\}/g;

/** The key with every `!{timestamp:PATTERN}` replaced by `at` formatted (UTC). */
export function resolveKey(key: string, at: Date): string {
  return key.replace(PLACEHOLDER, (_m, pattern: string) => {
    if (pattern.length === 0) throw new KeyPatternError('empty !{timestamp:} pattern');
    return formatTimestamp(pattern, at);
  });
}
