import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatCompact } from "../lib/format.ts";

export interface ChartSeries {
  label: string;
  color: string;
  values: (number | null)[];
  /**
   * The y axis it is read on: series of another kind (volunteers beside chunks per second) get
   * their own, on the right, so neither is flattened by the other's range.
   */
  axis?: "left" | "right";
}

/** Canvas text is measured with the chart's own font: an axis is as wide as its widest label. */
const font = "12px system-ui, sans-serif";
let measure: CanvasRenderingContext2D | null = null;
function textWidth(text: string): number {
  measure ??= document.createElement("canvas").getContext("2d");
  if (!measure) return text.length * 7;
  measure.font = font;
  return measure.measureText(text).width;
}

/** Room for the tick labels beside the axis line and its ticks, so labels never run into the plot or off the edge. */
const axisSize = (_: uPlot, values: string[] | null) => Math.ceil(Math.max(24, ...(values ?? []).map(textWidth))) + 18;

/**
 * A time-series line chart (uPlot): `times` in seconds since the epoch, one array of values
 * per series; `unit` follows the left axis's figures, `rightUnit` the right one's. Resizes
 * with its container.
 */
export function LineChart({
  title,
  times,
  series,
  height = 220,
  unit = "",
  rightUnit = "",
  minSpanSec = 60,
}: {
  title: string;
  times: number[];
  series: ChartSeries[];
  height?: number;
  unit?: string;
  rightUnit?: string;
  /** The x axis covers at least this much, so that a fresh chart reads in seconds rather than milliseconds. */
  minSpanSec?: number;
}) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => `${s.label}:${s.color}:${s.axis ?? "left"}`).join("|");
  const hasRight = series.some((s) => s.axis === "right");

  // biome-ignore lint/correctness/useExhaustiveDependencies: the chart is rebuilt only when its shape changes (series labels, colours, axes: `shape`); new data is fed by the effect below
  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const ticks = (suffix: string) => (_: uPlot, values: number[]) => values.map((v) => `${formatCompact(v)}${suffix}`);
    const chart = new uPlot(
      {
        width: Math.max(200, element.clientWidth),
        height,
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            fill: s.axis === "right" ? undefined : `${s.color}22`,
            scale: s.axis === "right" ? "right" : "y",
            value: (_: uPlot, v: number | null) => (v == null ? "–" : `${formatCompact(v)}${s.axis === "right" ? rightUnit : unit}`),
          })),
        ],
        axes: [
          // At least ~90 px between time labels, so that they do not run into each other on a phone.
          { space: 90, font, size: 50 },
          { scale: "y", font, size: axisSize, values: ticks(unit) },
          ...(hasRight
            ? [{ scale: "right", side: 1, font, size: axisSize, values: ticks(rightUnit), incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000], grid: { show: false } }]
            : []),
        ],
        scales: {
          x: { time: true, range: (_: uPlot, min: number, max: number) => [Math.min(min, max - minSpanSec), max] as uPlot.Range.MinMax },
          y: { range: (_: uPlot, min: number, max: number) => [0, Math.max(1, max * 1.1, min)] },
          // Whole numbers of volunteers: at least 0..2, so that one volunteer is not the whole height.
          ...(hasRight ? { right: { range: (_: uPlot, _min: number, max: number) => [0, Math.max(2, Math.ceil(max * 1.2))] } } : {}),
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
  }, [shape, height, unit, rightUnit, minSpanSec]);

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
