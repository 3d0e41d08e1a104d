// The code editor of `archdsl serve`: CodeMirror 6 with YAML, line numbers, completion
// and hover from archdsl's JSON Schema, and the server's error shown inline at its
// line and column. Exposed as window.ArchdslEditor.create(parent, options).
import { basicSetup } from "codemirror";
import { EditorView } from "@codemirror/view";
import { EditorState } from "@codemirror/state";
import { yaml, yamlLanguage } from "@codemirror/lang-yaml";
import { linter, lintGutter, setDiagnostics } from "@codemirror/lint";
import { hoverTooltip } from "@codemirror/view";
import { yamlCompletion, yamlSchemaHover } from "codemirror-json-schema/yaml";
import { stateExtensions } from "codemirror-json-schema";

function create(parent, { doc, schema, onChange }) {
  let problem = null; // {line, col, message} from the server, or null
  function diagnostics(state) {
    if (!problem) return [];
    const doc = state.doc;
    const line = doc.line(Math.min(Math.max(problem.line || 1, 1), doc.lines));
    const from = Math.min(line.from + Math.max((problem.col || 1) - 1, 0), line.to);
    return [{ from, to: Math.max(from, line.to), severity: "error", message: problem.message,
              source: "archdsl" }];
  }
  const serverLint = linter((view) => diagnostics(view.state), { delay: 0 });
  const extensions = [
    basicSetup,
    yaml(),
    yamlLanguage.data.of({ autocomplete: yamlCompletion() }),
    hoverTooltip(yamlSchemaHover()),
    stateExtensions(schema),
    serverLint,
    lintGutter(),
    EditorView.updateListener.of((u) => { if (u.docChanged && onChange) onChange(); }),
  ];
  const view = new EditorView({ parent, state: EditorState.create({ doc, extensions }) });
  return {
    view,
    getDoc: () => view.state.doc.toString(),
    // another file, or the file reloaded from disk: a fresh state, so undo can't bring
    // back the text of another file (no change event: the caller knows)
    setDoc(text) {
      problem = null;
      view.setState(EditorState.create({ doc: text, extensions }));
    },
    setProblem(p) {
      problem = p;
      view.dispatch(setDiagnostics(view.state, diagnostics(view.state)));
    },
  };
}

window.ArchdslEditor = { create };
