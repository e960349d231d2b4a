// Writes kubeconform JSON schemas (GROUP/KIND_VERSION.json) for every served version
// of the CustomResourceDefinitions in the given YAML files, closing every object
// that declares its properties so that a misspelt field fails as with -strict.
// Usage: node crd2schema.mjs OUT_DIR CRD.yaml...
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import yaml from "js-yaml";

function strict(schema) {
  if (Array.isArray(schema)) return schema.map(strict);
  if (schema === null || typeof schema !== "object") return schema;
  const out = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, strict(v)]));
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    !out["x-kubernetes-preserve-unknown-fields"]
  ) {
    out.additionalProperties = false;
  }
  return out;
}

const [outDir, ...files] = process.argv.slice(2);
for (const file of files) {
  for (const crd of yaml.loadAll(readFileSync(file, "utf8"))) {
    if (crd?.kind !== "CustomResourceDefinition") continue;
    const { group, names } = crd.spec;
    for (const version of crd.spec.versions.filter((v) => v.served)) {
      const schema = strict(version.schema.openAPIV3Schema);
      schema.properties = {
        ...schema.properties,
        apiVersion: { type: "string", enum: [`${group}/${version.name}`] },
        kind: { type: "string", enum: [names.kind] },
        metadata: { type: "object" },
      };
      mkdirSync(`${outDir}/${group}`, { recursive: true });
      const path = `${outDir}/${group}/${names.kind.toLowerCase()}_${version.name}.json`;
      writeFileSync(path, JSON.stringify(schema));
    }
  }
}
