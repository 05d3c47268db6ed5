import type { Account, Problem } from "@crowdcompute/sdk";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { Row, Table } from "../../components/ui/table.tsx";
import { formatDate, plural } from "../../lib/format.ts";
import { problemOf } from "../../lib/problem.ts";
import { useSession } from "../../lib/session.tsx";

type Action = "approve" | "suspend" | "unsuspend";

/** Admin: creators' accounts, with approval (REQUIRE_CREATOR_APPROVAL) and suspension. */
export function AccountsCard() {
  const { client, session } = useSession();
  const queryClient = useQueryClient();
  const accounts = useQuery({ queryKey: ["accounts"], queryFn: () => client.listAccounts({ limit: 100 }), refetchInterval: 10_000 });
  const pending = useQuery({ queryKey: ["accounts", "pending"], queryFn: () => client.listAccounts({ status: "pending", limit: 100 }), refetchInterval: 10_000 });
  const [problem, setProblem] = useState<Problem | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const act = useMutation({
    mutationFn: ({ account, action }: { account: Account; action: Action }) => client.accountAction(account.id, action),
    onMutate: () => {
      setProblem(null);
      setNotice(null);
    },
    onSuccess: (result, { account, action }) => {
      const paused = result.pausedTasks?.length ?? 0;
      setNotice(`${account.email}: ${action === "approve" ? "approved" : action === "suspend" ? `suspended${paused > 0 ? `, ${plural(paused, "running task")} paused` : ""}` : "suspension lifted"}.`);
      void queryClient.invalidateQueries({ queryKey: ["accounts"] });
      void queryClient.invalidateQueries({ queryKey: ["tasks"] });
    },
    onError: (error) => setProblem(problemOf(error)),
  });

  const pendingIds = new Set((pending.data?.items ?? []).map((a) => a.id));
  const items = accounts.data?.items ?? [];
  const state = (a: Account) => (a.suspendedAt ? "suspended" : pendingIds.has(a.id) ? "pending" : "active");

  return (
    <Card aria-labelledby="accounts-heading">
      <CardTitle id="accounts-heading">Accounts</CardTitle>
      {accounts.error ? <ProblemAlert problem={problemOf(accounts.error)} /> : null}
      <ProblemAlert problem={problem} className="mb-3" />
      {notice ? (
        <p role="status" className="mb-3 text-sm text-emerald-800">
          {notice}
        </p>
      ) : null}
      <Table label="Accounts" columns={["Email", "Role", "State", "Since", { label: "Actions", hidden: true }]} minWidth="min-w-[32rem]">
        {items.map((account) => {
          const s = state(account);
          const self = account.id === session?.user.id;
          return (
            <Row key={account.id} middle>
              <td className="max-w-[16rem] truncate py-2 pr-3">
                {account.email}
                {self ? " (you)" : ""}
              </td>
              <td className="py-2 pr-3">{account.role}</td>
              <td className={`py-2 pr-3 ${s === "suspended" ? "text-red-700" : s === "pending" ? "text-amber-700" : ""}`}>{s}</td>
              <td className="py-2 pr-3 whitespace-nowrap">{formatDate(account.createdAt)}</td>
              <td className="py-2 text-right whitespace-nowrap">
                {self || account.role === "admin" ? null : (
                  <span className="inline-flex gap-2">
                    {s === "pending" ? (
                      <Button className="!px-3 !py-1" disabled={act.isPending} onClick={() => act.mutate({ account, action: "approve" })} aria-label={`Approve ${account.email}`}>
                        Approve
                      </Button>
                    ) : null}
                    {s === "suspended" ? (
                      <Button className="!px-3 !py-1" disabled={act.isPending} onClick={() => act.mutate({ account, action: "unsuspend" })} aria-label={`Lift the suspension of ${account.email}`}>
                        Unsuspend
                      </Button>
                    ) : (
                      <Button variant="danger" className="!px-3 !py-1" disabled={act.isPending} onClick={() => act.mutate({ account, action: "suspend" })} aria-label={`Suspend ${account.email}`}>
                        Suspend
                      </Button>
                    )}
                  </span>
                )}
              </td>
            </Row>
          );
        })}
      </Table>
    </Card>
  );
}
