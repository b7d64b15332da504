import { defineConfig } from "vitest/config";

// Tauri loads ui/dist (custom protocol) in builds and the dev server at devUrl in `tauri dev`.
export default defineConfig({
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: {
    // WebKitGTK 2.4x (Debian 12) handles ES2022.
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
  },
});
