import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Relative asset URLs: the same build is served by `kontex dev` at / and by CloudFront.
export default defineConfig({
  base: "./",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 800 },
  server: {
    proxy: {
      "/v1": "http://127.0.0.1:8787",
      "/config.json": "http://127.0.0.1:8787",
      "/ws": { target: "ws://127.0.0.1:8787", ws: true },
    },
  },
});
