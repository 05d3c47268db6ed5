import type { Problem } from "@crowdcompute/sdk";
import { type FormEvent, useState } from "react";
import { Navigate, useNavigate, useSearchParams } from "react-router";
import { Button } from "../../components/ui/button.tsx";
import { Card } from "../../components/ui/card.tsx";
import { Field } from "../../components/ui/field.tsx";
import { ProblemAlert } from "../../components/ui/problem-alert.tsx";
import { fieldErrors, problemOf } from "../../lib/problem.ts";
import { useSession } from "../../lib/session.tsx";

type Mode = "signin" | "register";

/** `/signin`: sign in, or create a creator account. */
export function SignInPage() {
  const { session, client, signIn } = useSession();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [mode, setMode] = useState<Mode>(params.get("mode") === "register" ? "register" : "signin");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const next = params.get("next")?.startsWith("/") ? params.get("next")! : "/tasks";

  if (session && !busy) return <Navigate to={next} replace />;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const local: Record<string, string> = {};
    if (!/^[^\s@]+@[^\s@]+$/.test(email.trim())) local.email = "Enter an email address, like name@example.com.";
    if (password.length === 0) local.password = "Enter a password.";
    else if (mode === "register" && password.length < 8) local.password = "Use at least 8 characters.";
    setErrors(local);
    setProblem(null);
    if (Object.keys(local).length > 0) return;
    setBusy(true);
    try {
      const result = mode === "register" ? await client.register(email.trim(), password, displayName.trim() || undefined) : await client.login(email.trim(), password);
      signIn(result);
      void navigate(next, { replace: true });
    } catch (error) {
      const p = problemOf(error);
      setProblem(p);
      setErrors(fieldErrors(p));
    } finally {
      setBusy(false);
    }
  };

  const switchMode = (to: Mode) => {
    setMode(to);
    setProblem(null);
    setErrors({});
  };

  return (
    <div className="mx-auto max-w-md">
      <title>{mode === "register" ? "Create an account · CrowdCompute" : "Sign in · CrowdCompute"}</title>
      <h1 className="mb-2 text-2xl font-bold">{mode === "register" ? "Create an account" : "Sign in"}</h1>
      <p className="mb-6 text-slate-600">Creators sign in to publish tasks. Volunteering needs no account.</p>
      <Card>
        <form noValidate onSubmit={submit} className="flex flex-col gap-4" aria-label={mode === "register" ? "Create an account" : "Sign in"}>
          {mode === "register" ? (
            <Field
              label="Name shown to volunteers (optional)"
              autoComplete="organization"
              value={displayName}
              onChange={(e) => setDisplayName(e.target.value)}
              error={errors.name}
              hint="Volunteers see it beside your tasks' names; never your email."
            />
          ) : null}
          <Field label="Email" type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} error={errors.email} />
          <Field
            label="Password"
            type="password"
            autoComplete={mode === "register" ? "new-password" : "current-password"}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            error={errors.password}
            hint={mode === "register" ? "At least 8 characters." : undefined}
          />
          <ProblemAlert problem={problem} />
          <Button type="submit" variant="primary" disabled={busy}>
            {busy ? "Please wait…" : mode === "register" ? "Create account" : "Sign in"}
          </Button>
        </form>
      </Card>
      <p className="mt-4 text-center text-sm text-slate-600">
        {mode === "register" ? "Already have an account? " : "New here? "}
        <button type="button" className="font-medium text-brand-700 underline" onClick={() => switchMode(mode === "register" ? "signin" : "register")}>
          {mode === "register" ? "Sign in" : "Create an account"}
        </button>
      </p>
    </div>
  );
}
