export function formatDuration(ms: number): string {
  if (ms > 0 && ms < 1) return "<1 ms";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) => (small > 0 ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
  if (ms < 3_600_000) return pair(Math.floor(ms / 60_000), "min", Math.round((ms % 60_000) / 1000), "s");
  return pair(Math.floor(ms / 3_600_000), "h", Math.round((ms % 3_600_000) / 60_000), "min");
}

export const formatNumber = (n: number) => new Intl.NumberFormat("en").format(n);

export function formatRate(perSec: number): string {
  return perSec >= 100 ? `${Math.round(perSec)}/s` : `${perSec.toFixed(perSec >= 10 ? 1 : 2)}/s`;
}

export function formatDate(iso: string): string {
  return new Date(iso).toLocaleString("en", { dateStyle: "medium", timeStyle: "short" });
}
