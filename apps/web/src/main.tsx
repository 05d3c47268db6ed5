import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { registerServiceWorker } from "./lib/service-worker.ts";
import { SessionProvider } from "./lib/session.tsx";
import { AppRoutes } from "./router.tsx";
import "./styles.css";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <SessionProvider>
      <AppRoutes />
    </SessionProvider>
  </StrictMode>,
);

registerServiceWorker();
