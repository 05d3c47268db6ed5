import { Suspense, useEffect, useRef, useState } from "react";
import { Link, Navigate, NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { useSession } from "../lib/session.tsx";

const linkClass = ({ isActive }: { isActive: boolean }) => `block rounded-md px-3 py-2 text-sm font-medium ${isActive ? "bg-brand-50 text-brand-700" : "text-slate-700 hover:bg-slate-100"}`;

/** Header navigation and the page below it. */
export function AppShell() {
  const { session, isAdmin, signOut } = useSession();
  const [open, setOpen] = useState(false);
  const navigate = useNavigate();
  const close = () => setOpen(false);
  const menuButton = useRef<HTMLButtonElement>(null);
  // Esc closes the phone menu and gives the focus back to its button, as a disclosure should.
  useEffect(() => {
    if (!open) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "Escape") return;
      setOpen(false);
      menuButton.current?.focus();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [open]);

  const links = (
    <>
      <li>
        <NavLink to="/" end className={linkClass} onClick={close}>
          Volunteer
        </NavLink>
      </li>
      <li>
        <NavLink to="/tasks" className={linkClass} onClick={close}>
          Tasks
        </NavLink>
      </li>
      {session ? (
        <li>
          <NavLink to="/keys" className={linkClass} onClick={close}>
            API keys
          </NavLink>
        </li>
      ) : null}
      {isAdmin ? (
        <li>
          <NavLink to="/monitor" className={linkClass} onClick={close}>
            Monitor
          </NavLink>
        </li>
      ) : null}
    </>
  );
  const account = session ? (
    <div className="flex items-center gap-2">
      <span className="hidden truncate text-sm text-slate-500 lg:inline" title={session.user.email}>
        {session.user.email}
      </span>
      <button
        type="button"
        className="rounded-md px-3 py-2 text-sm font-medium text-slate-700 hover:bg-slate-100"
        onClick={() => {
          close();
          signOut();
          void navigate("/");
        }}
      >
        Sign out
      </button>
    </div>
  ) : (
    <NavLink to="/signin" className={linkClass} onClick={close}>
      Sign in
    </NavLink>
  );

  return (
    <div className="flex min-h-dvh flex-col">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:m-2 focus:rounded focus:bg-white focus:p-2">
        Skip to content
      </a>
      <header className="sticky top-0 z-10 border-b border-slate-200 bg-white/90 backdrop-blur">
        <div className="mx-auto flex max-w-6xl items-center justify-between gap-4 px-4 py-2">
          <Link to="/" className="flex items-center gap-2 text-lg font-bold text-slate-900" onClick={close}>
            <img src="/icon.svg" alt="" width={28} height={28} />
            CrowdCompute
          </Link>
          <nav aria-label="Main" className="hidden flex-1 items-center justify-between md:flex">
            <ul className="flex items-center gap-1">{links}</ul>
            {account}
          </nav>
          <button
            ref={menuButton}
            type="button"
            className="rounded-md border border-slate-300 px-3 py-2 text-sm md:hidden"
            aria-expanded={open}
            aria-controls="mobile-nav"
            onClick={() => setOpen(!open)}
          >
            Menu
          </button>
        </div>
        {open ? (
          <nav id="mobile-nav" aria-label="Main" className="border-t border-slate-200 px-4 py-2 md:hidden">
            <ul className="flex flex-col gap-1">{links}</ul>
            <div className="mt-1 border-t border-slate-100 pt-1">{account}</div>
          </nav>
        ) : null}
      </header>
      <main id="main" className="mx-auto w-full max-w-6xl flex-1 px-4 py-6 sm:py-8">
        <Suspense fallback={<p className="text-slate-500">Loading…</p>}>
          <Outlet />
        </Suspense>
      </main>
      <footer className="border-t border-slate-200 py-4 text-center text-sm text-slate-500">
        Work runs in a sandbox with no network access.{" "}
        <a href="/api/docs" className="text-brand-700 underline">
          API reference
        </a>
      </footer>
    </div>
  );
}

/** Routes for signed-in creators (and admins, with `admin`): others go to /signin and come back. */
export function RequireSession({ admin = false }: { admin?: boolean }) {
  const { session, isAdmin } = useSession();
  const location = useLocation();
  if (!session) return <Navigate to={`/signin?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  if (admin && !isAdmin) {
    return (
      <div role="alert" className="rounded-lg border border-amber-200 bg-amber-50 p-4 text-amber-900">
        This page is for administrators.
      </div>
    );
  }
  return <Outlet />;
}
