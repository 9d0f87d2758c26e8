/**
 * The web app's files, embedded in LocalHmi's main.js by scripts/build.js (web/bundle.js
 * `webAssetsPlugin`): path relative to the web root -> base64 content.
 */
declare module 'hmi-web-assets' {
  const files: Readonly<Record<string, string>>;
  export default files;
}
