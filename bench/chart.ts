/**
 * `npm run bench:chart [-- results.json]`: draws the latest benchmark results (or the given file) as an SVG next to
 * them: one bar per targeted metric, Liaison's ratio against its baseline, with the target marked. No dependencies.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface Row {
  caseTitle: string;
  metric: string;
  ratios?: Record<string, number>;
  target?: { against: string; op: ">=" | "<="; ratio: number };
  met?: boolean;
}

const dir = fileURLToPath(new URL("./results/", import.meta.url));
const file =
  process.argv[2] ??
  join(
    dir,
    readdirSync(dir)
      .filter((name) => /^\d{4}-\d{2}-\d{2}\.json$/.test(name))
      .sort()
      .at(-1) ?? "",
  );
const results = JSON.parse(readFileSync(file, "utf8")) as { date: string; mode: string; rows: Row[] };
const rows = results.rows.filter(
  (row): row is Required<Pick<Row, "target" | "ratios">> & Row =>
    row.target !== undefined && row.ratios?.[row.target.against] !== undefined,
);

const width = 760;
const label = 330;
const barHeight = 18;
const gap = 8;
const top = 46;
const height = top + rows.length * (barHeight + gap) + 36;
const maxRatio = Math.max(2.5, ...rows.map((row) => Math.min(4, row.ratios[row.target.against] ?? 0)));
const x = (ratio: number): number => label + (Math.min(ratio, maxRatio) / maxRatio) * (width - label - 70);
const escape = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

const parts: string[] = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
  `<rect width="100%" height="100%" fill="#ffffff"/>`,
  `<text x="12" y="22" font-size="14" font-weight="bold">Liaison / baseline, ${escape(results.date)} (${escape(results.mode)} run)</text>`,
  `<text x="12" y="38" fill="#555">bar: the ratio; tick: the target (≥ more is better, ≤ less is better); green met, red missed</text>`,
];
rows.forEach((row, index) => {
  const y = top + index * (barHeight + gap);
  const ratio = row.ratios[row.target.against] ?? 0;
  const colour = row.met === true ? "#2e7d32" : "#c62828";
  parts.push(
    `<text x="12" y="${y + 13}">${escape(`${row.caseTitle}: ${row.metric}`)}</text>`,
    `<rect x="${label}" y="${y}" width="${Math.max(1, x(ratio) - label)}" height="${barHeight}" fill="${colour}" opacity="0.85"/>`,
    `<line x1="${x(row.target.ratio)}" x2="${x(row.target.ratio)}" y1="${y - 3}" y2="${y + barHeight + 3}" stroke="#000" stroke-width="2"/>`,
    `<text x="${x(ratio) + 6}" y="${y + 13}">${ratio.toFixed(2)}× ${escape(row.target.against)} (${row.target.op === ">=" ? "≥" : "≤"} ${row.target.ratio}×)</text>`,
  );
});
parts.push(
  `<line x1="${x(1)}" x2="${x(1)}" y1="${top - 6}" y2="${height - 30}" stroke="#999" stroke-dasharray="3,3"/>`,
  `<text x="${x(1) - 8}" y="${height - 14}" fill="#555">1×</text>`,
  "</svg>",
);
const out = file.replace(/\.json$/, ".svg");
writeFileSync(out, parts.join("\n") + "\n");
process.stdout.write(`bench: wrote ${out}\n`);
