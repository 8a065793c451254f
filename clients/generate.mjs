// TypeScript types from the OpenAPI document: `node generate.mjs openapi.json qunfang.d.ts`.
// Uploads (`format: binary`) are Blobs, so that an app sends a photo without a cast; a field with
// a default may be left out of a request (defaultNonNullable: false).
import fs from "node:fs";
import openapiTS, { astToString } from "openapi-typescript";
import ts from "typescript";

const [source, target] = process.argv.slice(2);
const BLOB = ts.factory.createTypeReferenceNode(ts.factory.createIdentifier("Blob"));

const ast = await openapiTS(new URL(source, `file://${process.cwd()}/`), {
  defaultNonNullable: false,
  transform(schemaObject) {
    if (schemaObject.format === "binary") return BLOB;
  },
});
fs.writeFileSync(target, astToString(ast));
