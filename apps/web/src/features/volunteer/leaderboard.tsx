import type { LeaderboardEntry } from "@crowdcompute/sdk";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { Row, Table } from "../../components/ui/table.tsx";
import { usePolled } from "../../hooks/use-polled.ts";
import { api } from "../../lib/api.ts";
import { formatCredit, formatDuration, formatNumber } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";

const fetched = 100;
const shown = 10;

/** The top 100 contributors, refreshed every 10 s. */
export function useLeaderboard() {
  return usePolled(() => api.leaderboard(fetched), 10_000);
}

export const isMine = (entry: LeaderboardEntry, volunteerId: string | null, userId: string | null) =>
  (entry.kind === "volunteer" && entry.id === volunteerId) || (entry.kind === "user" && entry.id === userId);

/** The top contributors (by credit), with this browser's own row marked. */
export function Leaderboard({ board, volunteerId, userId }: { board: ReturnType<typeof useLeaderboard>; volunteerId: string | null; userId: string | null }) {
  const items = (board.data ?? []).slice(0, shown);
  return (
    <Card aria-labelledby="leaderboard-heading">
      <CardTitle id="leaderboard-heading">Leaderboard</CardTitle>
      {board.error ? <ProblemAlert problem={problemOf(board.error)} /> : null}
      {board.data && items.length === 0 ? <p className="text-sm text-slate-500">No results yet: be the first.</p> : null}
      {items.length > 0 ? (
        <Table
          label="Leaderboard"
          columns={["#", "Name", { label: "Credit", align: "right", title: "CPU hours of results that won their quorum" }, { label: "Chunks", align: "right" }, { label: "CPU", align: "right" }]}
        >
          {items.map((entry, i) => {
            const mine = isMine(entry, volunteerId, userId);
            return (
              <Row key={`${entry.kind}:${entry.id}`} middle className={mine ? "bg-brand-50 font-medium" : ""} aria-current={mine ? "true" : undefined}>
                <td className="py-2 pr-3 tabular-nums">{i + 1}</td>
                <td className="max-w-[12rem] truncate py-2 pr-3" title={entry.name}>
                  {entry.name}
                  {mine ? " (you)" : ""}
                </td>
                <td className="py-2 pr-3 text-right whitespace-nowrap tabular-nums" data-testid="leaderboard-credit" data-ms={entry.credit}>
                  {formatCredit(entry.credit)}
                </td>
                <td className="py-2 pr-3 text-right tabular-nums">{formatNumber(entry.chunksDone)}</td>
                <td className="py-2 text-right whitespace-nowrap tabular-nums">{formatDuration(entry.cpuMs)}</td>
              </Row>
            );
          })}
        </Table>
      ) : null}
    </Card>
  );
}
