import type { Target } from "./types.js";

/** A ratio target: Liaison's figure divided by a baseline's, compared with `ratio`. */
export interface RatioTarget {
  against: "parity" | "raw";
  op: ">=" | "<=";
  ratio: number;
  stretch?: number;
  /** How the baseline is named in the target, when not just `against` (e.g. "two-node parity"). */
  againstLabel?: string;
}

/** A bound on Liaison's own figure, whatever the baselines do (the event-loop stall of the reconnect storm). */
export interface LimitTarget {
  op: "<=";
  limit: number;
  unit: string;
}

export type Goal = RatioTarget | LimitTarget;

const isLimit = (goal: Goal): goal is LimitTarget => "limit" in goal;

export interface Row {
  caseId: string;
  caseTitle: string;
  metric: string;
  unit: string;
  /** Medians over the rounds, by server (absent: not measured for this server). */
  values: Partial<Record<Target, number>>;
  /** The key of each round's metrics the values come from: the report lists a target's ratio round by round. */
  metricKey?: string;
  target?: Goal;
  /** Filled by `evaluate`. */
  ratios?: { parity?: number; raw?: number };
  met?: boolean;
  stretchMet?: boolean;
  digits?: number;
}

export function evaluate(row: Row): Row {
  const liaison = row.values.liaison;
  const ratio = (baseline: number | undefined) =>
    liaison === undefined || baseline === undefined || Number.isNaN(liaison) || Number.isNaN(baseline)
      ? undefined
      : baseline === 0
        ? undefined
        : liaison / baseline;
  row.ratios = { parity: ratio(row.values.parity), raw: ratio(row.values.raw) };
  const target = row.target;
  if (target && isLimit(target)) {
    if (liaison !== undefined && !Number.isNaN(liaison)) row.met = liaison <= target.limit;
  } else if (target) {
    const value = row.ratios[target.against];
    if (value !== undefined && !Number.isNaN(value)) {
      row.met = target.op === ">=" ? value >= target.ratio : value <= target.ratio;
      if (target.stretch !== undefined) {
        row.stretchMet = target.op === ">=" ? value >= target.stretch : value <= target.stretch;
      }
    }
  }
  return row;
}

export function formatNumber(value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return "lost";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const formatRatio = (value: number | undefined): string =>
  value === undefined || Number.isNaN(value) ? "–" : Number.isFinite(value) ? `${value.toFixed(2)}×` : "∞";

export function describeTarget(target: Goal | undefined): string {
  if (!target) return "";
  if (isLimit(target)) return `≤ ${formatNumber(target.limit)} ${target.unit}`;
  const stretch = target.stretch === undefined ? "" : ` (stretch ${target.stretch}×)`;
  return `${target.op === ">=" ? "≥" : "≤"} ${target.ratio}× ${target.againstLabel ?? target.against}${stretch}`;
}

function verdict(row: Row): string {
  if (!row.target) return "";
  if (row.met === undefined) return "not measured";
  if (!row.met) return "**missed**";
  return row.stretchMet === true ? "met (stretch too)" : "met";
}

/** The one table: absolute figures, Liaison/parity, Liaison/raw, the target and whether it is met. */
export function markdownTable(rows: readonly Row[]): string {
  const header = ["case", "metric", "raw", "parity", "Liaison", "Liaison/parity", "Liaison/raw", "target", "result"];
  const body = rows.map((row) => [
    row.caseTitle,
    `${row.metric} (${row.unit})`,
    formatNumber(row.values.raw, row.digits),
    formatNumber(row.values.parity, row.digits),
    formatNumber(row.values.liaison, row.digits),
    formatRatio(row.ratios?.parity),
    formatRatio(row.ratios?.raw),
    describeTarget(row.target),
    verdict(row),
  ]);
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...body.map((line) => (line[column] ?? "").length)),
  );
  const numeric = new Set([2, 3, 4, 5, 6]);
  const line = (cells: readonly string[]) =>
    `| ${cells
      .map((cell, column) =>
        numeric.has(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
      )
      .join(" | ")} |`;
  const rule = `| ${widths.map((width, column) => (numeric.has(column) ? `${"-".repeat(width - 1)}:` : "-".repeat(width))).join(" | ")} |`;
  return [line(header), rule, ...body.map(line)].join("\n");
}
