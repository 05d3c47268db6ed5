import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `vite dev` talks to an API started with `npm start` (PORT 8787 by default).
const apiPort = Number(process.env.PORT ?? 8787);

export default defineConfig({
  plugins: [react()],
  server: { proxy: { "/api": `http://localhost:${apiPort}` } },
  build: { outDir: "dist", emptyOutDir: true },
});
