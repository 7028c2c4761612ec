// The projector's scatter, kept mounted: each message from Python (see wire.py) is
// decoded against the arrays this page already holds and drawn with Plotly.react on the
// same div, so a colour change re-splits the points here instead of remounting the chart
// (a new WebGL context and every point drawn twice, as st.plotly_chart does).
// plotly.js is the installed plotly package's own bundle, served by this Streamlit server.

const MOUNTS = new Map(); // Python key -> {blobs: Map(id -> array), last: message id}
const KEEP_MOUNTS = 4; // arrays of this many charts stay in memory (a chart per slot)
const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array,
  i2: Int16Array, u2: Uint16Array, i1: Int8Array, u1: Uint8Array};
let plotlyLoading = null;

function loadPlotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        plotlyLoading = null;
        reject(new Error(`plotly.js did not load from ${url}`));
      };
      document.head.appendChild(script);
    });
  }
  return plotlyLoading;
}

function mountState(key) {
  let state = MOUNTS.get(key);
  if (state) MOUNTS.delete(key); // re-inserted last: the map's order is recency
  state = state || {blobs: new Map(), last: null, queue: Promise.resolve()};
  MOUNTS.set(key, state);
  while (MOUNTS.size > KEEP_MOUNTS) MOUNTS.delete(MOUNTS.keys().next().value);
  return state;
}

function readMessage(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + size)));
  const start = 4 + size;
  const blobs = new Map();
  for (const blob of header.blobs) {
    // A copy: typed arrays need aligned offsets, and the message's buffer is Streamlit's.
    const raw = bytes.slice(start + blob.offset, start + blob.offset + blob.nbytes);
    blobs.set(blob.id, blob.dtype === "json" ? JSON.parse(new TextDecoder().decode(raw))
      : new TYPES[blob.dtype](raw.buffer));
  }
  return {header, blobs};
}

function rowsOf(flat, shape) {
  // plotly.js reads 2-D arrays (customdata) as rows: views into one buffer.
  if (!shape) return flat;
  const [n, k] = shape;
  if (Array.isArray(flat)) return flat;
  const rows = new Array(n);
  for (let i = 0; i < n; i++) rows[i] = flat.subarray(i * k, (i + 1) * k);
  return rows;
}

function indicesOf(ref, blobs, memo) {
  if (ref.$blob) return blobs.get(ref.$blob);
  let split = memo.get(ref.$codes); // one pass over the codes for all the traces
  if (!split) {
    const codes = blobs.get(ref.$codes);
    const counts = new Int32Array(256);
    for (let i = 0; i < codes.length; i++) counts[codes[i]]++;
    split = Array.from(counts, (c) => new Int32Array(c));
    const fill = new Int32Array(256);
    for (let i = 0; i < codes.length; i++) split[codes[i]][fill[codes[i]]++] = i;
    memo.set(ref.$codes, split);
  }
  return split[ref.code];
}

function gather(ref, blobs, memo) {
  const base = blobs.get(ref.$gather.$blob);
  const idx = indicesOf(ref.idx, blobs, memo);
  const shape = ref.$gather.shape;
  if (Array.isArray(base)) {
    const out = new Array(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = base[idx[i]];
    return out;
  }
  const k = shape ? shape[1] : 1;
  const out = new base.constructor(idx.length * k);
  if (k === 1) {
    for (let i = 0; i < idx.length; i++) out[i] = base[idx[i]];
  } else {
    for (let i = 0; i < idx.length; i++) out.set(base.subarray(idx[i] * k, idx[i] * k + k), i * k);
  }
  return shape ? rowsOf(out, [idx.length, k]) : out;
}

function decode(value, blobs, memo) {
  if (Array.isArray(value)) return value.map((v) => decode(v, blobs, memo));
  if (value === null || typeof value !== "object") return value;
  if (value.$blob) return rowsOf(blobs.get(value.$blob), value.shape);
  if (value.$gather) return gather(value, blobs, memo);
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = decode(v, blobs, memo);
  return out;
}

function pointsOf(event) {
  // The projector's hover convention: a point's first customdata value is its index.
  const points = [];
  for (const p of (event && event.points) || []) {
    const first = p.customdata && p.customdata[0];
    if (first !== undefined && first !== null && !Number.isNaN(Number(first))) {
      points.push(Number(first));
    }
  }
  return points;
}

async function draw(root, state, header, blobs, setTriggerValue) {
  for (const [id, array] of blobs) state.blobs.set(id, array);
  const missing = header.uses.filter((id) => !state.blobs.has(id));
  if (missing.length) { // this page lost arrays Python thinks it holds: ask again
    state.blobs.clear();
    state.last = null;
    setTriggerValue("missing", missing.length);
    return;
  }
  for (const id of [...state.blobs.keys()]) {
    if (!header.uses.includes(id)) state.blobs.delete(id);
  }
  const Plotly = await loadPlotly(header.plotly);
  const memo = new Map();
  const data = decode(header.figure.data, state.blobs, memo);
  const layout = decode(header.figure.layout, state.blobs, memo);
  // The same points keep the user's zoom and legend clicks; other points start afresh.
  layout.uirevision = header.base || header.msg;
  let div = root.querySelector(":scope > div.insight-scatter");
  if (!div) {
    div = document.createElement("div");
    div.className = "insight-scatter";
    div.style.width = "100%";
    root.appendChild(div);
  }
  await Plotly.react(div, data, layout, header.config);
  div.dataset.message = header.msg; // for tests and benchmarks: which message is drawn
  if (!div.dataset.listening) {
    div.dataset.listening = "1";
    const send = (event) => {
      const points = pointsOf(event);
      if (points.length) div._insightSelect(points);
    };
    div.on("plotly_click", send);
    div.on("plotly_selected", send);
    new ResizeObserver(() => Plotly.Plots.resize(div)).observe(div);
  }
  div._insightSelect = (points) => setTriggerValue("select", points);
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  if (!(data instanceof Uint8Array)) return undefined;
  const {header, blobs} = readMessage(data);
  const state = mountState(header.key);
  const root = parentElement;
  if (state.last === header.msg && root.querySelector(":scope > div.insight-scatter")) {
    return undefined;
  }
  state.last = header.msg;
  // Messages are drawn in order, each once the previous one is on screen.
  state.queue = state.queue.then(() => draw(root, state, header, blobs, setTriggerValue))
    .catch((error) => {
      state.last = null;
      root.textContent = `The chart could not be drawn: ${error.message}`;
    });
  return () => {
    const div = root.querySelector(":scope > div.insight-scatter");
    if (div && window.Plotly) window.Plotly.purge(div);
  };
}
