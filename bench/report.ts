// The benchmark's results: the table, the JSON rows and an SVG chart of them.
import { MiB } from './sessions';

export interface Row {
  name: string;
  metric: 'rtt_us' | 'gbps';
  /** The median, in the metric's unit: microseconds per round trip, or gigabits per second. */
  median: number;
  /** Each run, in the same unit. */
  runs: number[];
  /** The C floor it is compared with, and the median of the per-run ratios against it. */
  floor?: string;
  vsFloor?: number;
  /** The median of the per-run ratios against the Unix socket of the same metric. */
  vsSocket?: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** A run's nanoseconds per round trip or per MiB, in the metric's unit. */
export function inUnit(metric: Row['metric'], nanos: number): number {
  return metric === 'rtt_us' ? nanos / 1000 : (MiB * 8) / nanos;
}

function shown(row: Row): string {
  return row.metric === 'rtt_us' ? `${row.median.toFixed(2)} µs` : `${row.median.toFixed(1)} Gbit/s`;
}

function ratio(value: number | undefined, what: string): string {
  return value === undefined ? '' : `${value.toFixed(2)}x ${what}`;
}

export function table(rows: Row[]): string {
  const lines: string[] = [];
  let metric: Row['metric'] | undefined;
  for (const row of rows) {
    if (row.metric !== metric) {
      metric = row.metric;
      lines.push(metric === 'rtt_us'
        ? '\n64-byte round trip between two processes (lower is better; ratios of time)'
        : '\n1 MiB at a time from one process to another (higher is better; ratios of throughput)');
    }
    const notes = [ratio(row.vsFloor, row.floor ?? ''), ratio(row.vsSocket, 'the socket')].filter(Boolean).join('   ');
    lines.push(`  ${row.name.padEnd(44)} ${shown(row).padStart(13)}   ${notes}`);
  }
  return lines.join('\n');
}

/** One bar per row, in two panels (round trips, then throughput), each scaled to its largest. */
export function svg(rows: Row[], title: string): string {
  const width = 900;
  const barHeight = 18;
  const labelWidth = 330;
  const parts: string[] = [];
  let y = 40;
  for (const metric of ['rtt_us', 'gbps'] as const) {
    const panel = rows.filter((row) => row.metric === metric);
    if (panel.length === 0) continue;
    const largest = Math.max(...panel.map((row) => row.median));
    parts.push(`<text x="10" y="${y}" font-weight="bold">${metric === 'rtt_us' ? '64-byte round trip, µs (lower is better)' : '1 MiB transfers, Gbit/s (higher is better)'}</text>`);
    y += 10;
    for (const row of panel) {
      const length = Math.max(1, ((width - labelWidth - 90) * row.median) / largest);
      const colour = row.name.startsWith('C ') ? '#999' : '#2a6ebb';
      parts.push(`<text x="10" y="${y + 13}">${escape(row.name)}</text>`);
      parts.push(`<rect x="${labelWidth}" y="${y}" width="${length.toFixed(1)}" height="${barHeight - 4}" fill="${colour}"/>`);
      parts.push(`<text x="${labelWidth + length + 6}" y="${y + 13}">${shown(row)}</text>`);
      y += barHeight;
    }
    y += 30;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">
<text x="10" y="20" font-size="14">${escape(title)}</text>
${parts.join('\n')}
</svg>
`;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
