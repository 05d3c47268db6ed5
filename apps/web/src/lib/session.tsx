// The signed-in creator: the JWT and user from register/login, kept in localStorage.
import { type Client, createClient, type Session } from "@crowdcompute/sdk";
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from "react";

const storageKey = "crowdcompute.session";
const unauthorizedEvent = "crowdcompute:unauthorized";

/** Called where a request with the session's token got a 401: the session is over (expired or revoked). */
export function reportUnauthorized(): void {
  window.dispatchEvent(new Event(unauthorizedEvent));
}

function expired(token: string): boolean {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/"))) as { exp?: number };
    return typeof payload.exp === "number" && payload.exp * 1000 <= Date.now();
  } catch {
    return true;
  }
}

function loadSession(): Session | null {
  try {
    const raw = localStorage.getItem(storageKey);
    if (!raw) return null;
    const session = JSON.parse(raw) as Session;
    if (typeof session.token !== "string" || expired(session.token)) {
      localStorage.removeItem(storageKey);
      return null;
    }
    return session;
  } catch {
    return null;
  }
}

interface SessionValue {
  session: Session | null;
  /** The API client, with the session's token when signed in. */
  client: Client;
  isAdmin: boolean;
  signIn(session: Session): void;
  signOut(): void;
}

const SessionContext = createContext<SessionValue | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(loadSession);
  const signIn = useCallback((next: Session) => {
    localStorage.setItem(storageKey, JSON.stringify(next));
    setSession(next);
  }, []);
  const signOut = useCallback(() => {
    localStorage.removeItem(storageKey);
    setSession(null);
  }, []);
  useEffect(() => {
    window.addEventListener(unauthorizedEvent, signOut);
    // Another tab signed in or out.
    const onStorage = (event: StorageEvent) => event.key === storageKey && setSession(loadSession());
    window.addEventListener("storage", onStorage);
    return () => {
      window.removeEventListener(unauthorizedEvent, signOut);
      window.removeEventListener("storage", onStorage);
    };
  }, [signOut]);
  const value = useMemo<SessionValue>(
    () => ({
      session,
      client: createClient({ baseUrl: "", ...(session ? { token: session.token } : {}) }),
      isAdmin: session?.user.role === "admin",
      signIn,
      signOut,
    }),
    [session, signIn, signOut],
  );
  return <SessionContext value={value}>{children}</SessionContext>;
}

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error("useSession outside SessionProvider");
  return value;
}
