// web-ext settings, picked up when web-ext runs in this folder (npm run lint / npm run build).
// Dev tooling and the node tests are not part of the extension package.
export default {
  sourceDir: '.',
  ignoreFiles: ['tests', 'tests/**', 'package.json', 'package-lock.json', 'web-ext-config.mjs', 'README.md'],
  build: { overwriteDest: true },
};
