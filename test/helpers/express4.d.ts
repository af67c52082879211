// `express4` is npm:express@4, installed beside Express 5 to test both; its API is typed like express.
declare module 'express4' {
  import express from 'express';
  export default express;
}
