// Builds the viewer into the Python package's static folder (git-ignored), served by `neurolesion serve`.
import { defineConfig } from 'vite'

export default defineConfig({
  base: './',
  build: {
    outDir: '../src/neurolesion/service/static',
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
  },
})
