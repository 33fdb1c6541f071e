// The benches' numeric settings from the environment (BENCH_SECONDS, BENCH_ROUNDS, …): unset or
// empty takes the default; anything but a whole number of at least `min` stops the bench with
// the variable's name, rather than running with a setting nobody asked for.

export function wholeFromEnv(name: string, fallback: number, min = 1): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name}=${JSON.stringify(text)}: expected a whole number ≥ ${min}`);
  return n;
}
