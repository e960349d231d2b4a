// Validates the Strimzi and prometheus-operator objects of a rendered overlay against
// the CRD schemas compiled into the pinned @kubernetes-models packages, and writes
// every other object to a file for kubeconform.
// Usage: node validate-crs.mjs RENDERED.yaml REST.yaml
import { readFileSync, writeFileSync } from "node:fs";
import yaml from "js-yaml";

const MODELS = {
  "kafka.strimzi.io": "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator/monitoring.coreos.com",
};

const [renderedPath, restPath] = process.argv.slice(2);
const documents = yaml.loadAll(readFileSync(renderedPath, "utf8")).filter(Boolean);
const rest = [];
const failures = [];
let validated = 0;
for (const doc of documents) {
  const [group, version] = String(doc.apiVersion).split("/");
  const base = MODELS[group];
  if (!base) {
    rest.push(doc);
    continue;
  }
  const where = `${doc.kind} ${doc.metadata?.name}`;
  let Model;
  try {
    Model = (await import(`${base}/${version}/${doc.kind}`))[doc.kind];
  } catch {
    failures.push(`${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
    continue;
  }
  try {
    new Model(doc).validate();
    validated += 1;
  } catch (error) {
    failures.push(`${where}: ${error.message}`);
  }
}
writeFileSync(restPath, rest.map((doc) => yaml.dump(doc)).join("---\n"));
for (const failure of failures) console.error(`INVALID ${failure}`);
console.log(JSON.stringify({ validated, invalid: failures.length, rest: rest.length }));
process.exit(failures.length ? 1 : 0);
