import type { LeaderboardEntry } from "@crowdcompute/sdk";
import { useQuery } from "@tanstack/react-query";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { api } from "../../lib/api.ts";
import { formatDuration, formatNumber } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";

const fetched = 100;
const shown = 10;

/** The top 100 contributors, refreshed every 10 s. */
export function useLeaderboard() {
  return useQuery({ queryKey: ["leaderboard", fetched], queryFn: () => api.leaderboard(fetched), refetchInterval: 10_000 });
}

const isMine = (entry: LeaderboardEntry, volunteerId: string | null, userId: string | null) =>
  (entry.kind === "volunteer" && entry.id === volunteerId) || (entry.kind === "user" && entry.id === userId);

/** This browser's (or its signed-in user's) entry, when it is among the top 100. */
export function useOwnEntry(volunteerId: string | null, userId: string | null): LeaderboardEntry | null {
  const board = useLeaderboard();
  return board.data?.find((entry) => isMine(entry, volunteerId, userId)) ?? null;
}

/** The top contributors (by credit), with this browser's own row marked. */
export function Leaderboard({ volunteerId, userId }: { volunteerId: string | null; userId: string | null }) {
  const board = useLeaderboard();
  const items = (board.data ?? []).slice(0, shown);
  return (
    <Card aria-labelledby="leaderboard-heading">
      <CardTitle id="leaderboard-heading">Leaderboard</CardTitle>
      {board.error ? <ProblemAlert problem={problemOf(board.error)} /> : null}
      {board.isSuccess && items.length === 0 ? <p className="text-sm text-slate-500">No results yet: be the first.</p> : null}
      {items.length > 0 ? (
        <div className="relative overflow-x-auto">
          <table className="w-full text-left text-sm" aria-label="Leaderboard">
            <thead className="border-b border-slate-200 text-slate-500">
              <tr>
                <th scope="col" className="py-2 pr-3 font-medium">#</th>
                <th scope="col" className="py-2 pr-3 font-medium">Name</th>
                <th scope="col" className="py-2 pr-3 text-right font-medium">Credit</th>
                <th scope="col" className="py-2 pr-3 text-right font-medium">Chunks</th>
                <th scope="col" className="py-2 text-right font-medium">CPU</th>
              </tr>
            </thead>
            <tbody>
              {items.map((entry, i) => {
                const mine = isMine(entry, volunteerId, userId);
                return (
                  <tr key={`${entry.kind}:${entry.id}`} className={`border-b border-slate-100 ${mine ? "bg-brand-50 font-medium" : ""}`} aria-current={mine ? "true" : undefined}>
                    <td className="py-2 pr-3 tabular-nums">{i + 1}</td>
                    <td className="max-w-[12rem] truncate py-2 pr-3">{entry.name}{mine ? " (you)" : ""}</td>
                    <td className="py-2 pr-3 text-right tabular-nums">{formatDuration(entry.credit)}</td>
                    <td className="py-2 pr-3 text-right tabular-nums">{formatNumber(entry.chunksDone)}</td>
                    <td className="py-2 text-right tabular-nums">{formatDuration(entry.cpuMs)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
    </Card>
  );
}
