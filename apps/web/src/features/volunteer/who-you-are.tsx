// The volunteer page's card of who this browser is on the leaderboard (use-identity.ts renames it).
import { type FormEvent, useId, useState } from "react";
import { Button } from "../../components/ui/button.tsx";
import { Card, CardTitle } from "../../components/ui/card.tsx";
import { inputClass } from "../../components/ui/field.tsx";
import type { VolunteerIdentity } from "./use-identity.ts";
import { defaultVolunteerName } from "./volunteer-name.ts";

/** The name this browser appears under on the leaderboard, and a way to change it. */
export function WhoYouAre({ identity, shownAs }: { identity: VolunteerIdentity; shownAs: string | null }) {
  const id = useId();
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { target } = identity;
  const save = async (event: FormEvent) => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return setProblem("Enter a name.");
    setBusy(true);
    setProblem(null);
    try {
      await identity.rename(trimmed);
      setEditing(false);
    } catch (error) {
      setProblem(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card aria-labelledby={`${id}-heading`}>
      <CardTitle id={`${id}-heading`}>You</CardTitle>
      <p className="text-sm text-slate-600">
        On the leaderboard as{" "}
        <strong className="text-slate-900" data-testid="shown-as">
          {shownAs ?? defaultVolunteerName()}
        </strong>
        {target === "account" ? " (your account's display name, for all your browsers)" : target === "account-signed-out" ? " (the name of the account this browser computes for)" : ""}.
      </p>
      {editing ? (
        <form className="mt-3 flex flex-wrap items-end gap-2" onSubmit={(event) => void save(event)}>
          <div className="min-w-0 flex-1">
            <label htmlFor={`${id}-name`} className="mb-1 block text-sm font-medium text-slate-700">
              {target === "account" ? "Account display name" : "Your name"}
            </label>
            {/* biome-ignore lint/a11y/noAutofocus: the field appears because its Change name button was pressed */}
            <input id={`${id}-name`} className={inputClass} value={name} maxLength={100} onChange={(event) => setName(event.target.value)} autoFocus aria-invalid={problem ? true : undefined} />
          </div>
          <Button type="submit" variant="primary" disabled={busy}>
            Save
          </Button>
          <Button onClick={() => setEditing(false)}>Cancel</Button>
        </form>
      ) : target === "account-signed-out" ? (
        <p className="mt-2 text-xs text-slate-500">Sign in to that account to change it.</p>
      ) : (
        <Button
          className="mt-3"
          onClick={() => {
            setName(shownAs ?? "");
            setProblem(null);
            setEditing(true);
          }}
        >
          Change name
        </Button>
      )}
      {problem ? (
        <p role="alert" className="mt-2 text-sm text-red-700">
          {problem}
        </p>
      ) : null}
      <p className="mt-3 text-xs text-slate-500">Shown to everyone on the leaderboard, never your email.</p>
    </Card>
  );
}
