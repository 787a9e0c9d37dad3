// What every benchmark shares: medians of several runs, printed side by side.
export const RUNS = 7;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Median nanoseconds per operation of `fn`, which performs `ops` operations per call. */
export function measure(ops: number, fn: () => void): number {
  fn();
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    fn();
    runs.push(Number(process.hrtime.bigint() - started) / ops);
  }
  return median(runs);
}

/** As measure, for an asynchronous `fn`. */
export async function measureAsync(ops: number, fn: () => Promise<void>): Promise<number> {
  await fn();
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = process.hrtime.bigint();
    await fn();
    runs.push(Number(process.hrtime.bigint() - started) / ops);
  }
  return median(runs);
}

export function row(name: string, nanos: number, unit: 'op' | 'MiB', note = ''): void {
  const perOp = nanos < 1000 ? `${nanos.toFixed(1)} ns/op` : `${(nanos / 1000).toFixed(2)} µs/op`;
  const shown = unit === 'op' ? perOp : `${(1e9 / nanos / 1024).toFixed(0)} GiB/s`;
  console.log(`  ${name.padEnd(48)} ${shown.padStart(14)}${note ? `  ${note}` : ''}`);
}
