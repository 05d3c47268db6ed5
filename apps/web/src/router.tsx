// The app's routes: thin entries pointing at each feature's page. The creator and monitor
// pages load on first visit, so the volunteer page never downloads the editor or charts.
import { createBrowserRouter, Navigate } from "react-router";
import { AppShell, RequireSession } from "./components/app-shell.tsx";
import { NotFoundPage } from "./components/not-found-page.tsx";
import { SignInPage } from "./features/auth/sign-in-page.tsx";
import { VolunteerPage } from "./features/volunteer/volunteer-page.tsx";

export const router = createBrowserRouter([
  {
    element: <AppShell />,
    children: [
      { path: "/", element: <VolunteerPage /> },
      { path: "/signin", element: <SignInPage /> },
      { path: "/signup", element: <Navigate to="/signin?mode=register" replace /> },
      {
        element: <RequireSession />,
        children: [
          { path: "/tasks", lazy: async () => ({ Component: (await import("./features/tasks/task-list-page.tsx")).TaskListPage }) },
          { path: "/tasks/new", lazy: async () => ({ Component: (await import("./features/tasks/new-task-page.tsx")).NewTaskPage }) },
          { path: "/tasks/:id", lazy: async () => ({ Component: (await import("./features/tasks/task-page.tsx")).TaskPage }) },
          { path: "/keys", lazy: async () => ({ Component: (await import("./features/keys/api-keys-page.tsx")).ApiKeysPage }) },
        ],
      },
      {
        element: <RequireSession admin />,
        children: [{ path: "/monitor", lazy: async () => ({ Component: (await import("./features/monitor/monitor-page.tsx")).MonitorPage }) }],
      },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);
