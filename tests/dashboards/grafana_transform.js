// Runs dashboard panels' transformations with Grafana's own code (@grafana/data from npm).
//
// stdin: {"panels": [{"key": "...", "transformations": [...], "frames": [{"refId", "fields":
//         [{"name", "type", "values", "labels"}]}]}]}
// stdout: {"<key>": {"frames": [{"refId", "fields": [{"name", "type", "values"}]}],
//          "config": [{"refId", "fields": [{"name", "displayName", "values"}]}]}}
// Number values "+Inf" and "-Inf" stand for the infinities JSON cannot carry, both ways.
// Run with NODE_PATH pointing at the node_modules folder holding @grafana/data.
//
// "Config from query results" (configFromData) is not in @grafana/data but in Grafana's app
// (under the AGPL, not used here). For it this script reports what Grafana's own code says
// about the config query's frame (each field's display name, the name a mapping matches, and
// its values), drops that frame from the panel's data as the transformation does, and runs
// the remaining transformations. Any other transformation the registry lacks is an error.
"use strict";

// @grafana/data 11 reads window.grafanaBootData while loading, while a styling dependency of
// later releases takes any window for a browser and fails on document: load without a window,
// and with an empty one if loading asks for it. The transformer pipeline then needs a window.
function load() {
  try {
    return require("@grafana/data");
  } catch (err) {
    if (!String(err).includes("window is not defined")) throw err;
    for (const key of Object.keys(require.cache)) delete require.cache[key];
    globalThis.window = {};
    return require("@grafana/data");
  }
}
const grafana = load();
globalThis.window = globalThis;

const {
  getFieldDisplayName,
  standardTransformers,
  standardTransformersRegistry,
  toDataFrame,
  transformDataFrame,
} = grafana;

// The registry is empty until initialised. Grafana 11 reads each transformer's info from the
// item's `transformation`, later releases call it: a function carrying the info serves both.
function registryItems() {
  const seen = new Set();
  const items = [];
  for (const info of Object.values(standardTransformers)) {
    if (seen.has(info.id)) continue; // two entries share joinByField
    seen.add(info.id);
    const transformation = () => info;
    for (const [key, value] of Object.entries(info)) {
      Object.defineProperty(transformation, key, { value, writable: true, configurable: true });
    }
    items.push({
      id: info.id,
      aliasIds: info.aliasIds,
      name: info.name,
      transformation,
      editor: null,
      imageDark: "",
      imageLight: "",
    });
  }
  return items;
}

// The pipeline is an rxjs Observable; some releases emit asynchronously.
function run(transformations, frames) {
  return new Promise((resolve, reject) => {
    transformDataFrame(transformations, frames).subscribe({
      next: resolve,
      error: reject,
      complete: () => reject(new Error("the transformations emitted no frames")),
    });
  });
}

const APP_ONLY = new Set(["configFromData"]);

// The config query's frame as configFromData reads it; the frames left for the panel.
function takeConfig(transformation, frames) {
  const refId = transformation.options.configRefId;
  const frame = frames.find((each) => each.refId === refId);
  if (frame === undefined) return { config: { refId, fields: [] }, frames };
  const fields = frame.fields.map((field) => ({
    name: field.name,
    displayName: getFieldDisplayName(field, frame, frames),
    values: Array.from(field.values),
  }));
  const rest = frames.length > 1 ? frames.filter((each) => each !== frame) : frames;
  return { config: { refId, fields }, frames: rest };
}

const INFINITIES = { "+Inf": Infinity, "-Inf": -Infinity };

// A number field's values with the infinities restored (Grafana decodes its JSON so too).
function withInfinities(frame) {
  return {
    ...frame,
    fields: frame.fields.map((field) =>
      field.type !== "number"
        ? field
        : { ...field, values: field.values.map((v) => (v in INFINITIES ? INFINITIES[v] : v)) },
    ),
  };
}

// A value for JSON: an infinity by name.
function encoded(value) {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return value;
}

async function main(input) {
  standardTransformersRegistry.setInit(registryItems);
  const output = {};
  for (const panel of input.panels) {
    let frames = panel.frames.map((frame) => toDataFrame(withInfinities(frame)));
    const config = [];
    const transformations = [];
    for (const transformation of panel.transformations) {
      if (APP_ONLY.has(transformation.id)) {
        const taken = takeConfig(transformation, frames);
        config.push(taken.config);
        frames = taken.frames;
      } else if (standardTransformersRegistry.getIfExists(transformation.id) === undefined) {
        throw new Error(`${panel.key}: no transformer ${transformation.id} in @grafana/data`);
      } else {
        transformations.push(transformation);
      }
    }
    const result = await run(transformations, frames);
    output[panel.key] = {
      config,
      frames: result.map((frame) => ({
        refId: frame.refId,
        fields: frame.fields.map((field) => ({
          name: field.name,
          type: field.type,
          values: Array.from(field.values, encoded),
        })),
      })),
    };
  }
  return output;
}

let text = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  text += chunk;
});
process.stdin.on("end", () => {
  main(JSON.parse(text)).then(
    (output) => process.stdout.write(JSON.stringify(output)),
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
});
