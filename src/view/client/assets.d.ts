// Style sheets are bundled by esbuild (scripts/bundle.js) into dist/page/app.css.
declare module '*.css';
