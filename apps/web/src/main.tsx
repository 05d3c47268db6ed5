import { ApiError } from "@crowdcompute/sdk";
import { QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { RouterProvider } from "react-router";
import { registerServiceWorker } from "./lib/service-worker.ts";
import { reportUnauthorized, SessionProvider } from "./lib/session.tsx";
import { router } from "./router.tsx";
import "./styles.css";

const queryClient = new QueryClient({
  queryCache: new QueryCache({
    onError: (error) => {
      if (error instanceof ApiError && error.status === 401) reportUnauthorized();
    },
  }),
  defaultOptions: {
    queries: {
      // A 4xx will not get better by asking again; a network blip or a 5xx may.
      retry: (failures, error) => !(error instanceof ApiError && error.status < 500) && failures < 3,
      refetchOnWindowFocus: false,
    },
  },
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <SessionProvider>
        <RouterProvider router={router} />
      </SessionProvider>
    </QueryClientProvider>
  </StrictMode>,
);

registerServiceWorker();
