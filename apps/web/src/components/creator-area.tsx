// The creator and admin pages' query cache, loaded with the first of them: the volunteer page
// (the first script) does without @tanstack/react-query.
import { ApiError } from "@crowdcompute/sdk";
import { QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { Outlet } from "react-router";
import { reportUnauthorized } from "../lib/session.tsx";

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

export function CreatorArea() {
  return (
    <QueryClientProvider client={queryClient}>
      <Outlet />
    </QueryClientProvider>
  );
}
