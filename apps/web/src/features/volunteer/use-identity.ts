import type { Client, Session, VolunteerFigures } from "@crowdcompute/sdk";
import { useEffect, useState } from "react";
import { volunteerTokenKey } from "./volunteer-runner.ts";

/** Where a rename goes: the account's display name stands for all of its volunteers. */
type NameTarget = "volunteer" | "account" | "account-signed-out";

export interface VolunteerIdentity {
  /** This browser's volunteer as the server knows it; null before it has one. */
  figures: VolunteerFigures | null;
  /** What a rename changes: this browser's volunteer, or the account it computes for. */
  target: NameTarget;
  rename(name: string): Promise<void>;
}

const refreshMs = 15_000;

/**
 * Who this browser volunteers as: its volunteer's figures from the server (by the token the
 * runner keeps), refreshed now and then, and how to rename it. A volunteer of the signed-in
 * account shows the account's display name, so renaming it renames the account.
 */
export function useVolunteerIdentity(client: Client, session: Session | null, signIn: (session: Session) => void, volunteerId: string | null): VolunteerIdentity {
  const [figures, setFigures] = useState<VolunteerFigures | null>(null);
  const [version, setVersion] = useState(0);

  // biome-ignore lint/correctness/useExhaustiveDependencies: `volunteerId`, `version` and who is signed in are what ask for a fresh read
  useEffect(() => {
    let stopped = false;
    const read = async () => {
      const token = localStorage.getItem(volunteerTokenKey);
      if (!token) return;
      try {
        let found = await client.withToken(token).volunteerFigures();
        // Volunteered before signing in: from now on this browser computes for the account.
        // The runner takes the new token from storage (same volunteer, the account in it).
        if (session && found.userId === null) {
          const linked = await client.linkVolunteer(token);
          localStorage.setItem(volunteerTokenKey, linked.token);
          found = await client.withToken(linked.token).volunteerFigures();
        }
        if (!stopped) setFigures(found);
      } catch {
        // Figures are a nicety: the runner reports real trouble.
      }
    };
    void read();
    const timer = setInterval(() => void read(), refreshMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [client, session?.user.id, volunteerId, version]);

  const linked = figures?.userId ?? null;
  const target: NameTarget = linked ? (linked === session?.user.id ? "account" : "account-signed-out") : figures || !session ? "volunteer" : "account";

  const rename = async (name: string) => {
    if (target === "account-signed-out") throw new Error("This browser volunteers for an account: sign in to it to change its name.");
    if (target === "account") {
      const user = await client.setDisplayName(name);
      if (session) signIn({ ...session, user: { ...session.user, ...user } });
    }
    const token = localStorage.getItem(volunteerTokenKey);
    if (target === "volunteer") {
      if (token) setFigures(await client.withToken(token).renameVolunteer(name));
      else {
        // No identity yet (never started): make it now, under this name; the runner will use it.
        const created = await client.createVolunteer(name);
        localStorage.setItem(volunteerTokenKey, created.token);
      }
    }
    setVersion((v) => v + 1);
  };

  return { figures, target, rename };
}
