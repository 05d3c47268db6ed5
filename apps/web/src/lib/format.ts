// One way to write each kind of figure on every page: counts with grouping ("1,234"), words
// that agree with their count ("1 chunk"), durations, rates, and credit in CPU hours.

const numbers = new Intl.NumberFormat("en");

export const formatNumber = (n: number) => numbers.format(n);

/** "1 chunk", "2 chunks", "1,024 chunks": the count as `formatNumber` writes it, and the word to match. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${formatNumber(n)} ${n === 1 ? word : many}`;
}

export function formatDuration(ms: number): string {
  if (ms > 0 && ms < 1) return "<1 ms";
  if (ms < 999.5) return `${Math.round(ms)} ms`;
  // Rounded once, so that 59.96 s reads "1 min", not "60.0 s" or "0 min 60 s".
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) => (small > 0 ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return pair(Math.floor(seconds / 60), "min", seconds % 60, "s");
  const minutes = Math.round(ms / 60_000);
  return pair(Math.floor(minutes / 60), "h", minutes % 60, "min");
}

/** Chunks per second: two decimals under 10, one under 100, whole numbers (grouped) above. */
export function formatRate(perSec: number): string {
  return perSec >= 100 ? `${formatNumber(Math.round(perSec))}/s` : `${perSec.toFixed(perSec >= 10 ? 1 : 2)}/s`;
}

/**
 * Credit (ms of CPU whose results won their quorum) in CPU hours, the unit volunteer
 * projects count in: "0.25 CPU h", "12.5 CPU h", "1,234 CPU h".
 */
export function formatCredit(ms: number): string {
  const hours = ms / 3_600_000;
  if (hours === 0) return "0 CPU h";
  if (hours < 0.01) return "<0.01 CPU h";
  if (hours < 10) return `${hours.toFixed(2)} CPU h`;
  if (hours < 100) return `${hours.toFixed(1)} CPU h`;
  return `${formatNumber(Math.round(hours))} CPU h`;
}

/** Axis labels: "950", "1.2k", "3.4M". */
export function formatCompact(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toFixed(abs < 10 ? 2 : abs < 100 ? 1 : 0)}`;
}

/** "just now", "5 min ago", "3 h ago", "2 days ago". */
export function formatAgo(ms: number): string {
  if (ms < 60_000) return "just now";
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ago`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ago`;
  return `${plural(Math.floor(ms / 86_400_000), "day")} ago`;
}

export function formatDate(iso: string): string {
  return new Date(iso).toLocaleString("en", { dateStyle: "medium", timeStyle: "short" });
}
