/**
 * Types for the one function of pg's lib/utils that CallFS uses: the
 * conversion pg applies to every parameter (dates, arrays, buffers) before
 * sending it. @types/pg does not describe this module.
 */
declare module 'pg/lib/utils.js' {
  const utils: {
    prepareValue(value: unknown): string | Buffer | null | undefined;
  };
  export default utils;
}
