// `archdsl serve`'s page: the editor on the left, the report's pieces on the right,
// re-rendered by the server (debounced) as the spec changes; errors inline at their line
// and column while the last good render stays; the file on disk followed by
// Server-Sent Events; saves that never overwrite a change made elsewhere silently.
(function () {
  "use strict";
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const $ = id => document.getElementById(id);
  const state = {
    path: boot.file ? boot.file.path : null,
    saved: boot.file ? boot.file.text : "",   // the text on disk as last loaded or saved
    mtime: boot.file ? boot.file.mtime_ns : null,
    level: boot.level, device: boot.device, seq: 0, shown: 0, timer: null,
    diskChanged: null,                       // {text, mtime_ns} waiting for the user's choice
  };
  let editor = null;
  let loading = false;                       // a setDoc of ours, not the user's typing

  function status(text) { $("status").textContent = text; }
  function dirty() { return editor && editor.getDoc() !== state.saved; }
  function markDirty() {
    document.title = (dirty() ? "● " : "") + (state.path || "") + " — archdsl serve";
    $("save").disabled = !dirty();
  }

  async function call(method, url, body) {
    const r = await fetch(url, {method, headers: body ? {"Content-Type": "application/json"} : {},
                                body: body ? JSON.stringify(body) : undefined});
    const doc = await r.json();
    return {status: r.status, doc};
  }

  // The totals and the diagram first; the table, bars and plan once that frame is
  // painted (a 1,000-row table takes longer to lay out than the diagram to draw).
  function show(doc, seq) {
    const title = document.createElement("h2"), input = document.createElement("span");
    title.textContent = doc.name + " ";
    input.className = "muted";
    input.textContent = `input ${doc.input}`;
    title.appendChild(input);
    $("totals").innerHTML = doc.totals;   // escaped by the server's templates
    $("totals").prepend(title);
    const pane = $("diagram"), left = pane.scrollLeft, top = pane.scrollTop;
    pane.querySelector(".level").innerHTML = doc.diagram;
    pane.scrollLeft = left; pane.scrollTop = top;
    return new Promise(done => requestAnimationFrame(() => setTimeout(() => {
      window.archdslDrawnAt = performance.now();
      if (seq === state.shown) {
        const stage = $("stage-filter") ? $("stage-filter").value : "";
        $("layers-section").innerHTML = doc.layers;
        if (stage && Array.from($("stage-filter").options).some(o => o.value === stage)) {
          $("stage-filter").value = stage;
          report.filter();
        }
        $("bars").innerHTML = doc.bars;
        $("fusion").innerHTML = doc.fusion;
      }
      done();
    }, 0)));
  }

  async function render() {
    if (!state.path) return;
    const seq = ++state.seq;
    $("view").classList.add("busy");
    const started = performance.now();
    const {status: code, doc} = await call("POST", "/api/render", {
      path: state.path, text: editor.getDoc(), device: state.device, level: state.level, seq});
    if (seq < state.shown) return;         // an older answer arriving late
    state.shown = seq;
    if (code !== 200) { status(doc.error || `render failed (${code})`); return; }
    if (doc.ok) {
      await show(doc, seq);
      if (seq !== state.shown) return;
      editor.setProblem(null);
      $("problem").classList.remove("shown");
      $("diagram").classList.remove("stale");
      status(`${state.path}: rendered in ${Math.round(performance.now() - started)} ms`);
    } else {
      editor.setProblem(doc.error);
      $("problem").textContent = doc.error.message;
      $("problem").classList.add("shown");
      $("diagram").classList.add("stale");
      status(`${state.path}: error at line ${doc.error.line}, column ${doc.error.col}`);
    }
    document.body.dataset.rendered = String(seq);
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(render, 150);
  }

  function load(file) {
    state.path = file.path; state.saved = file.text; state.mtime = file.mtime_ns;
    state.diskChanged = null;
    $("conflict").classList.remove("shown");
    loading = true;
    editor.setDoc(file.text);
    loading = false;
    $("file").value = file.path;
    markDirty();
    render();
  }

  async function save(force) {
    const text = editor.getDoc();
    const {status: code, doc} = await call("PUT", "/api/file", {
      path: state.path, text, base_mtime_ns: state.mtime, force: !!force});
    if (code === 409) {
      conflict(doc, "The file changed on disk since it was loaded; saving would overwrite that change.");
      return;
    }
    if (code !== 200) { status(doc.error || `save failed (${code})`); return; }
    state.saved = text; state.mtime = doc.mtime_ns; state.diskChanged = null;
    $("conflict").classList.remove("shown");
    markDirty();
    status(`${state.path}: saved`);
  }

  function conflict(disk, text) {
    state.diskChanged = disk;
    $("conflict-text").textContent = text;
    $("conflict").classList.add("shown");
  }

  async function diskChange(msg) {
    if (msg.path !== state.path || msg.mtime_ns === state.mtime) return;
    if (msg.mtime_ns === null) { status(`${state.path} was removed from disk`); return; }
    const {status: code, doc} = await call("GET", `/api/file?path=${encodeURIComponent(state.path)}`);
    if (code !== 200 || doc.mtime_ns === state.mtime) return;
    if (doc.text === editor.getDoc()) { state.saved = doc.text; state.mtime = doc.mtime_ns; markDirty(); return; }
    if (!dirty()) { load(doc); status(`${state.path}: reloaded from disk`); return; }
    conflict(doc, "The file changed on disk while you have unsaved edits here.");
  }

  const report = archdslReport(document, level => { state.level = level; render(); });

  function start(schema) {
    for (const f of boot.files) $("file").add(new Option(f, f));
    for (const d of boot.devices) $("device").add(new Option(d, d));
    $("device").value = state.device;
    editor = ArchdslEditor.create($("editor"), {doc: state.saved, schema, onChange() {
      markDirty();
      if (!loading) schedule();
    }});
    if (state.path) $("file").value = state.path;
    markDirty();
    render();
    $("device").addEventListener("change", e => { state.device = e.target.value; render(); });
    $("file").addEventListener("change", async e => {
      if (dirty() && !confirm(`Discard the unsaved edits to ${state.path}?`)) {
        e.target.value = state.path; return;
      }
      const {status: code, doc} = await call("GET", `/api/file?path=${encodeURIComponent(e.target.value)}`);
      if (code === 200) load(doc); else status(doc.error);
    });
    $("save").addEventListener("click", () => save(false));
    document.addEventListener("keydown", e => {
      if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(false); }
    });
    $("take-disk").addEventListener("click", () => { if (state.diskChanged) load(state.diskChanged); });
    $("keep-mine").addEventListener("click", () => {
      // keep the edits; the next save overwrites the disk's version, knowingly
      if (state.diskChanged) state.mtime = state.diskChanged.mtime_ns;
      state.diskChanged = null;
      $("conflict").classList.remove("shown");
      markDirty();
    });
    const events = new EventSource("/events");
    events.onmessage = e => diskChange(JSON.parse(e.data));
    window.addEventListener("beforeunload", e => { if (dirty()) { e.preventDefault(); e.returnValue = ""; } });
  }

  window.archdslServe = {state, get editor() { return editor; }, render, save};  // scripting, tests
  fetch("/schema.json").then(r => r.json()).then(start);
})();
