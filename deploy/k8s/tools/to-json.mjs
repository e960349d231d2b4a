// Reads a rendered overlay (YAML documents) on stdin and writes them as one JSON list,
// so that the Python contract tests need no YAML library.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

const documents = yaml.loadAll(readFileSync(0, "utf8")).filter(Boolean);
process.stdout.write(JSON.stringify(documents));
