// validate.mjs - validates Kubernetes objects (multi-document YAML files) against the
// Kubernetes 1.34 OpenAPI schemas that the npm package kubernetes-models 5.1.0 compiles (its
// resource.k8s.io/v1 included), and ServiceMonitors against @kubernetes-models/prometheus-
// operator. Unknown fields, wrong types and missing required fields are errors; so is a kind
// neither package models. Prints one line per object, `ok KIND NAME` or `invalid KIND NAME:
// errors`, and exits 1 when any is invalid.
//
// usage: node validate.mjs FILE.yaml...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// apiVersion "group/version" or "version" (the core group) -> the module holding its kinds.
function modulePath(apiVersion, kind) {
  if (apiVersion === "monitoring.coreos.com/v1")
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

let bad = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const obj = doc.toJS();
    if (!obj) continue;
    const what = `${obj.kind} ${obj.metadata?.name ?? "(no name)"}`;
    let Model;
    try {
      Model = (await import(modulePath(obj.apiVersion, obj.kind)))[obj.kind];
    } catch {
      Model = undefined;
    }
    if (!Model) {
      console.log(`invalid ${what}: no schema for ${obj.apiVersion} ${obj.kind}`);
      bad++;
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(`ok ${obj.apiVersion} ${what}`);
    } catch (e) {
      console.log(`invalid ${what}: ${e.message}`);
      bad++;
    }
  }
}
process.exit(bad ? 1 : 0);
