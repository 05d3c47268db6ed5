import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  color: string;
  values: (number | null)[];
}

/**
 * A time-series line chart (uPlot): `times` in seconds since the epoch, one array of values
 * per series. Resizes with its container.
 */
export function LineChart({ title, times, series, height = 220, unit = "" }: { title: string; times: number[]; series: ChartSeries[]; height?: number; unit?: string }) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => `${s.label}:${s.color}`).join("|");

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const chart = new uPlot(
      {
        width: Math.max(200, element.clientWidth),
        height,
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, fill: `${s.color}22`, value: (_: uPlot, v: number | null) => (v == null ? "–" : `${v.toFixed(2)}${unit}`) }))],
        axes: [{}, { size: 56, values: (_: uPlot, ticks: number[]) => ticks.map((t) => `${+t.toFixed(2)}${unit}`) }],
        scales: {
          // At least the last minute, so a fresh chart reads in seconds rather than milliseconds.
          x: { time: true, range: (_: uPlot, min: number, max: number) => [Math.min(min, max - 60), max] },
          y: { range: (_: uPlot, min: number, max: number) => [0, Math.max(1, max * 1.1, min)] },
        },
        legend: { live: false },
      },
      [times, ...series.map((s) => s.values)],
      element,
    );
    plot.current = chart;
    const observer = new ResizeObserver(() => chart.setSize({ width: Math.max(200, element.clientWidth), height }));
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // Rebuilt only when the series themselves change (`shape`); new data goes through setData below.
  }, [shape, height, unit]);

  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)]);
  }, [times, series]);

  return (
    <figure>
      <figcaption className="sr-only">{title}</figcaption>
      <div ref={container} role="img" aria-label={title} className="w-full overflow-hidden" />
    </figure>
  );
}
