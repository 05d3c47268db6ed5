// The app's routes: thin entries pointing at each feature's page. Only the volunteer page is
// in the first script; every other page, the creator pages' query cache, the editor and the
// charts load on first visit (declarative routes: the data router alone was ~60 KB).
import { type ComponentType, lazy } from "react";
import { BrowserRouter, Navigate, Route, Routes } from "react-router";
import { AppShell, RequireSession } from "./components/app-shell.tsx";
import { NotFoundPage } from "./components/not-found-page.tsx";
import { VolunteerPage } from "./features/volunteer/volunteer-page.tsx";

const page = <K extends string>(load: () => Promise<Record<K, ComponentType>>, name: K) => lazy(async () => ({ default: (await load())[name] }));

const SignInPage = page(() => import("./features/auth/sign-in-page.tsx"), "SignInPage");
const CreatorArea = page(() => import("./components/creator-area.tsx"), "CreatorArea");
const TaskListPage = page(() => import("./features/tasks/task-list-page.tsx"), "TaskListPage");
const NewTaskPage = page(() => import("./features/tasks/new-task-page.tsx"), "NewTaskPage");
const TaskPage = page(() => import("./features/tasks/task-page.tsx"), "TaskPage");
const ApiKeysPage = page(() => import("./features/keys/api-keys-page.tsx"), "ApiKeysPage");
const MonitorPage = page(() => import("./features/monitor/monitor-page.tsx"), "MonitorPage");

export function AppRoutes() {
  return (
    <BrowserRouter>
      <Routes>
        <Route element={<AppShell />}>
          <Route path="/" element={<VolunteerPage />} />
          <Route path="/signin" element={<SignInPage />} />
          <Route path="/signup" element={<Navigate to="/signin?mode=register" replace />} />
          <Route element={<RequireSession />}>
            <Route element={<CreatorArea />}>
              <Route path="/tasks" element={<TaskListPage />} />
              <Route path="/tasks/new" element={<NewTaskPage />} />
              <Route path="/tasks/:id" element={<TaskPage />} />
              <Route path="/keys" element={<ApiKeysPage />} />
            </Route>
          </Route>
          <Route element={<RequireSession admin />}>
            <Route element={<CreatorArea />}>
              <Route path="/monitor" element={<MonitorPage />} />
            </Route>
          </Route>
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
