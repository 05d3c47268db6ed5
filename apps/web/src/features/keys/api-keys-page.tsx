import type { Problem } from "@crowdcompute/sdk";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { Field } from "../../components/ui/field.tsx";
import { PageHeader } from "../../components/ui/page-header.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { Row, Table } from "../../components/ui/table.tsx";
import { formatDate } from "../../lib/format.ts";
import { fieldErrors, problemOf } from "../../lib/problem.ts";
import { useSession } from "../../lib/session.tsx";

/** `/keys`: mint API keys for scripts and the CLI; revoke them. */
export function ApiKeysPage() {
  const { client, session } = useSession();
  const queryClient = useQueryClient();
  const keys = useQuery({ queryKey: ["api-keys", session?.user.id], queryFn: () => client.listApiKeys() });
  const [name, setName] = useState("");
  const [created, setCreated] = useState<{ key: string; name: string } | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [copied, setCopied] = useState(false);

  const create = useMutation({
    mutationFn: (keyName: string) => client.createApiKey(keyName || undefined),
    onSuccess: ({ key, apiKey }) => {
      setCreated({ key, name: apiKey.name });
      setName("");
      setCopied(false);
      void queryClient.invalidateQueries({ queryKey: ["api-keys"] });
    },
    onError: (error) => setProblem(problemOf(error)),
  });
  /** The key a Revoke button was pressed for: revoking cannot be undone, so it asks first. */
  const [confirming, setConfirming] = useState<string | null>(null);
  const revoke = useMutation({
    mutationFn: (id: string) => client.revokeApiKey(id),
    onSuccess: () => {
      setConfirming(null);
      void queryClient.invalidateQueries({ queryKey: ["api-keys"] });
    },
    onError: (error) => setProblem(problemOf(error)),
  });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setProblem(null);
    if (name.length > 100) return setProblem({ type: "about:blank", title: "Name too long", status: 0, detail: "Use at most 100 characters." });
    create.mutate(name.trim());
  };

  const items = keys.data ?? [];
  return (
    <>
      <PageHeader
        title="API keys"
        description={
          <>
            Keys let scripts and the <code>crowdcompute</code> CLI act as you. Keep them secret; revoke any you no longer use.
          </>
        }
      />
      <div className="grid grid-cols-1 items-start gap-6 lg:grid-cols-[20rem_minmax(0,1fr)]">
        <Card aria-labelledby="new-key">
          <CardTitle id="new-key">New key</CardTitle>
          <form onSubmit={submit} className="flex flex-col gap-3" noValidate>
            <Field label="Name" placeholder="e.g. laptop CLI" value={name} onChange={(e) => setName(e.target.value)} error={fieldErrors(problem).name} />
            <Button type="submit" variant="primary" disabled={create.isPending}>
              {create.isPending ? "Creating…" : "Create key"}
            </Button>
          </form>
          <ProblemAlert problem={problem} className="mt-3" />
          {created ? (
            <div role="status" className="mt-4 rounded-lg border border-emerald-200 bg-emerald-50 p-3 text-sm">
              <p className="mb-2 font-medium text-emerald-900">Key “{created.name}” created. Copy it now: it is not shown again.</p>
              <code className="block rounded bg-white p-2 font-mono text-xs break-all" data-testid="new-api-key">
                {created.key}
              </code>
              <Button
                className="mt-2 !py-1"
                onClick={() =>
                  void navigator.clipboard?.writeText(created.key).then(
                    () => setCopied(true),
                    () => {},
                  )
                }
              >
                {copied ? "Copied" : "Copy"}
              </Button>
            </div>
          ) : null}
        </Card>
        <Card aria-labelledby="your-keys">
          <CardTitle id="your-keys">Your keys</CardTitle>
          {keys.error ? <ProblemAlert problem={problemOf(keys.error)} /> : null}
          {keys.isSuccess && items.length === 0 ? <p className="text-sm text-slate-500">No keys yet.</p> : null}
          {items.length > 0 ? (
            <Table label="API keys" columns={["Name", "Key", "Created", "Last used", { label: "Actions", hidden: true }]}>
              {items.map((key) => (
                <Row key={key.id} middle>
                  <td className="py-2 pr-3">{key.name || "—"}</td>
                  <td className="py-2 pr-3 font-mono text-xs">{key.prefix}…</td>
                  <td className="py-2 pr-3 whitespace-nowrap">{formatDate(key.createdAt)}</td>
                  <td className="py-2 pr-3 whitespace-nowrap">{key.lastUsedAt ? formatDate(key.lastUsedAt) : "never"}</td>
                  <td className="py-2 text-right">
                    {key.revokedAt ? (
                      <span className="text-slate-500">revoked</span>
                    ) : confirming === key.id ? (
                      <span role="alertdialog" aria-label={`Revoke ${key.name || key.prefix}?`} className="inline-flex flex-wrap items-center justify-end gap-2">
                        <span className="text-red-800">Scripts using it stop working.</span>
                        <Button variant="danger" className="!px-3 !py-1" disabled={revoke.isPending} onClick={() => revoke.mutate(key.id)}>
                          Revoke key
                        </Button>
                        <Button className="!px-3 !py-1" onClick={() => setConfirming(null)} autoFocus>
                          Keep
                        </Button>
                      </span>
                    ) : (
                      <Button variant="danger" className="!px-3 !py-1" disabled={revoke.isPending} onClick={() => setConfirming(key.id)} aria-label={`Revoke ${key.name || key.prefix}`}>
                        Revoke
                      </Button>
                    )}
                  </td>
                </Row>
              ))}
            </Table>
          ) : null}
        </Card>
      </div>
    </>
  );
}
