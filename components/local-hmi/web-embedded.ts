/**
 * The web app's files carried in main.js: relative path -> base64. This source file is the empty
 * stand-in (tests, typecheck); scripts/build.js replaces the module while bundling with one built
 * from components/local-hmi/web/dist (hmiWebPlugin).
 */
export const WEB_FILES: Readonly<Record<string, string>> = {};
