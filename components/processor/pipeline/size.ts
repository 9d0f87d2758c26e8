/**
 * The JSON size of a decoded payload, estimated without serialising it and abandoned as soon as it
 * passes `limit` (messages over `maxMessageBytes` are rejected `message_too_large`). The SDK hands
 * us the decoded message, so the bytes on the wire are gone; this counts what they were made of:
 * string lengths, keys, digits, and punctuation.
 */
export function estimateJsonBytes(v: unknown, limit: number): number {
  let total = 0;
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'string') total += x.length + 2;
    else if (typeof x === 'number') total += 8;
    else if (typeof x === 'boolean' || x === null || x === undefined) total += 5;
    else if (Array.isArray(x)) {
      total += 2 + x.length;
      for (const y of x) stack.push(y);
    } else if (typeof x === 'object') {
      total += 2;
      for (const k in x as Record<string, unknown>) {
        total += k.length + 4;
        stack.push((x as Record<string, unknown>)[k]);
      }
    }
    if (total > limit) return total;
  }
  return total;
}
