import { resolve } from "node:path";
import { precompressDir } from "@crowdcompute/tooling/precompress";
import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

/** `.br` and `.gz` beside each built text file: the Node entry serves them as they are (apps/api/src/node/server.ts). */
function precompress(): Plugin {
  let outDir = "dist";
  return {
    name: "precompress",
    apply: "build",
    configResolved: (config) => void (outDir = resolve(config.root, config.build.outDir)),
    closeBundle: () => void precompressDir(outDir),
  };
}

// `vite dev` talks to an API started with `npm start` (PORT 8787 by default).
const apiPort = Number(process.env.PORT ?? 8787);

export default defineConfig({
  plugins: [react(), tailwindcss(), precompress()],
  server: { proxy: { "/api": `http://localhost:${apiPort}` } },
  // The code editor (CodeMirror, ~510 kB) is its own chunk, loaded by the new-task page.
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 600 },
});
