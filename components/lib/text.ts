/** Text for bounded fields and terminal lines. */

/** `s` cut to at most `max` characters, the last one an ellipsis when it was cut. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
