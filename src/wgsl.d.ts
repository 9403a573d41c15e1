// WGSL templates are imported as text: esbuild's text loader and the vitest plugin in vitest.config.ts.
declare module '*.wgsl' {
  const source: string;
  export default source;
}
