// `archdsl serve`'s page: the editor on the left, the report's pieces on the right,
// re-rendered by the server (debounced, one render in flight) as the spec changes;
// errors inline at their line and column while the last good render stays; the file on
// disk followed by Server-Sent Events; saves that never overwrite a change made
// elsewhere silently. Every answer that arrives after the page moved on (another file,
// a newer render) is dropped.
(function () {
  "use strict";
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const $ = id => document.getElementById(id);
  const state = {
    path: boot.file ? boot.file.path : null,
    saved: boot.file ? boot.file.text : "",   // the text on disk as last loaded or saved
    etag: boot.file ? boot.file.etag : null,  // its SHA-256, which a save must name
    mtime: boot.file ? boot.file.mtime_ns : null,
    level: boot.level, device: boot.device,
    seq: 0, shown: 0, timer: null, inflight: false, again: false,
    saving: null,                             // the text of a save under way
    disk: null,                               // the disk's version awaiting the user's choice
  };
  let editor = null;

  function status(text) { $("status").textContent = text; }
  function dirty() { return !!editor && editor.getDoc() !== state.saved; }
  function markDirty() {
    document.title = (dirty() ? "● " : "") + (state.path || "") + " — archdsl serve";
    $("save").disabled = !dirty() || !state.path;
  }

  async function call(method, url, body) {
    try {
      const r = await fetch(url, {method, headers: body ? {"Content-Type": "application/json"} : {},
                                  body: body ? JSON.stringify(body) : undefined});
      let doc;
      try { doc = await r.json(); } catch (e) { doc = {error: `${r.status} ${r.statusText}`}; }
      return {status: r.status, doc};
    } catch (e) {
      return {status: 0, doc: {error: `the server does not answer (${e.message})`}};
    }
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
    if (state.inflight) { state.again = true; return; }   // one render at a time
    state.inflight = true;
    const seq = ++state.seq, path = state.path, started = performance.now();
    const {status: code, doc} = await call("POST", "/api/render", {
      path, text: editor.getDoc(), device: state.device, level: state.level, seq});
    state.inflight = false;
    if (state.again) { state.again = false; render(); return; }  // the text moved on
    if (path !== state.path) return;
    state.shown = seq;
    if (code !== 200) { status(doc.error || `render failed (${code})`); return; }
    if (doc.ok) {
      await show(doc, seq);
      if (seq !== state.shown) return;
      editor.setProblem(null);
      $("problem").classList.remove("shown");
      $("diagram").classList.remove("stale");
      status(`${path}: rendered in ${Math.round(performance.now() - started)} ms`);
    } else {
      editor.setProblem(doc.error);
      $("problem").textContent = doc.error.message;
      $("problem").classList.add("shown");
      $("diagram").classList.add("stale");
      status(`${path}: error at line ${doc.error.line}, column ${doc.error.col}`);
    }
    document.body.dataset.rendered = String(seq);
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(render, 150);
  }

  function load(file) {
    state.path = file.path; state.saved = file.text; state.etag = file.etag;
    state.mtime = file.mtime_ns; state.disk = null;
    $("conflict").classList.remove("shown");
    editor.setDoc(file.text);
    $("file").value = file.path;
    markDirty();
    render();
  }

  async function save(force) {
    if (!state.path) return;
    const text = editor.getDoc(), path = state.path;
    state.saving = text;
    const {status: code, doc} = await call("PUT", "/api/file", {
      path, text, base_etag: state.etag, force: !!force});
    state.saving = null;
    if (path !== state.path) return;
    if (code === 409 && doc.conflict) {
      conflict(doc, "The file changed on disk since it was loaded; saving would overwrite that change.");
      return;
    }
    if (code !== 200) { status(doc.error || `save failed (${code})`); return; }
    state.saved = text; state.etag = doc.etag; state.mtime = doc.mtime_ns; state.disk = null;
    $("conflict").classList.remove("shown");
    markDirty();
    status(`${path}: saved`);
  }

  function conflict(disk, text) {
    state.disk = disk;
    $("conflict-text").textContent = text;
    $("conflict").classList.add("shown");
  }

  async function refreshFiles() {
    const {status: code, doc} = await call("GET", "/api/files");
    if (code !== 200) return;
    const picker = $("file");
    picker.replaceChildren(...doc.files.map(f => new Option(f, f)));
    if (state.path) picker.value = state.path;
  }

  async function diskChange(msg) {
    if (!Array.from($("file").options).some(o => o.value === msg.path)) refreshFiles();
    if (msg.path !== state.path || (msg.mtime_ns !== null && msg.mtime_ns === state.mtime)) return;
    if (state.saving !== null) return;      // our own save's echo: its answer updates us
    const path = state.path;
    if (msg.mtime_ns === null) { status(`${path} was removed from disk`); return; }
    const {status: code, doc} = await call("GET", `/api/file?path=${encodeURIComponent(path)}`);
    if (code !== 200 || path !== state.path || state.saving !== null || doc.etag === state.etag) {
      if (code === 200 && path === state.path && doc.etag === state.etag) state.mtime = doc.mtime_ns;
      return;
    }
    if (doc.text === editor.getDoc()) {     // the disk caught up with the editor
      state.saved = doc.text; state.etag = doc.etag; state.mtime = doc.mtime_ns; markDirty(); return;
    }
    if (!dirty()) { load(doc); status(`${path}: reloaded from disk`); return; }
    conflict(doc, "The file changed on disk while you have unsaved edits here.");
  }

  const report = archdslReport(document, level => { state.level = level; render(); });

  function start(schema) {
    for (const f of boot.files) $("file").add(new Option(f, f));
    for (const d of boot.devices) $("device").add(new Option(d, d));
    $("device").value = state.device;
    editor = ArchdslEditor.create($("editor"), {doc: state.saved, schema, onChange() {
      markDirty();
      schedule();
    }});
    if (state.path) $("file").value = state.path;
    else status("no spec file in the served folder");
    markDirty();
    render();
    $("device").addEventListener("change", e => { state.device = e.target.value; render(); });
    $("file").addEventListener("change", async e => {
      const want = e.target.value;
      e.target.value = state.path;           // until the new file is here
      if (dirty() && !confirm(`Discard the unsaved edits to ${state.path}?`)) return;
      const {status: code, doc} = await call("GET", `/api/file?path=${encodeURIComponent(want)}`);
      if (code === 200) load(doc); else status(doc.error);
    });
    $("save").addEventListener("click", () => save(false));
    document.addEventListener("keydown", e => {
      if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(false); }
    });
    $("take-disk").addEventListener("click", () => { if (state.disk) load(state.disk); });
    $("keep-mine").addEventListener("click", () => {
      // keep the edits; the next save overwrites the disk's version, knowingly
      if (state.disk) { state.etag = state.disk.etag; state.mtime = state.disk.mtime_ns; }
      state.disk = null;
      $("conflict").classList.remove("shown");
      markDirty();
    });
    const events = new EventSource("/events");
    events.onmessage = e => diskChange(JSON.parse(e.data));
    // (re)connected: whatever changed while the stream was down is checked now
    events.onopen = () => { if (state.path) diskChange({path: state.path, mtime_ns: "?"}); };
    window.addEventListener("beforeunload", e => { if (dirty()) { e.preventDefault(); e.returnValue = ""; } });
  }

  window.archdslServe = {state, get editor() { return editor; }, render, save};  // scripting, tests
  fetch("/schema.json").then(r => r.json()).then(start);
})();
