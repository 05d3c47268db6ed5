import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `vite dev` talks to an API started with `npm start` (PORT 8787 by default).
const apiPort = Number(process.env.PORT ?? 8787);

export default defineConfig({
  plugins: [react(), tailwindcss()],
  server: { proxy: { "/api": `http://localhost:${apiPort}` } },
  // The new-task page carries CodeMirror (~530 kB) in its own lazily loaded chunk.
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 600 },
});
