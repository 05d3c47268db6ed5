import { createClient } from "@crowdcompute/sdk";

/** The API of the server that served this page. */
export const api = createClient({ baseUrl: "" });
