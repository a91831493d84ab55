// Renders /api/docs from the OpenAPI document (a file of its own: the
// Content-Security-Policy runs no inline script).
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
function schemaOf(doc, s, depth = 0) {
  if (!s || depth > 4) return "…";
  if (s.$ref) { const name = s.$ref.split("/").pop(); return schemaOf(doc, doc.components.schemas[name], depth + 1); }
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map(x => schemaOf(doc, x, depth + 1)).join(" | ");
  if (s.allOf) return s.allOf.map(x => schemaOf(doc, x, depth + 1)).join(" & ");
  const t = Array.isArray(s.type) ? s.type.filter(x => x !== "null").join("|") : s.type;
  if (t === "array") return "[" + schemaOf(doc, s.items, depth + 1) + "]";
  if (t === "object" || s.properties) {
    const req = new Set(s.required || []);
    const fields = Object.entries(s.properties || {}).map(([k, v]) => "  ".repeat(depth + 1) + k + (req.has(k) ? "" : "?") + ": " + schemaOf(doc, v, depth + 1));
    return "{\n" + fields.join(",\n") + "\n" + "  ".repeat(depth) + "}";
  }
  return (t || "any") + (s.format ? " (" + s.format + ")" : "") + (s.enum ? " " + s.enum.join("|") : "");
}
fetch("/api/v1/openapi.json").then(r => r.json()).then(doc => {
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) {
    const tag = (op.tags || ["other"])[0]; (byTag[tag] ||= []).push({path, method, op});
  }
  let html = "";
  for (const [tag, list] of Object.entries(byTag)) {
    html += `<h2>${esc(tag)}</h2>`;
    for (const {path, method, op} of list) {
      const params = (op.parameters || []).map(p => `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${esc(schemaOf(doc, p.schema))}</td><td>${esc(p.description || "")}</td></tr>`).join("");
      const body = op.requestBody?.content?.["application/json"]?.schema;
      const responses = Object.entries(op.responses || {}).map(([code, r]) => {
        const s = r.content?.["application/json"]?.schema;
        return `<tr><td>${esc(code)}</td><td>${esc(r.description || "")}</td><td>${s ? `<pre>${esc(schemaOf(doc, s))}</pre>` : ""}</td></tr>`;
      }).join("");
      html += `<details><summary><span class="method ${method}">${method.toUpperCase()}</span><span class="path">${esc(path)}</span><span class="sum">${esc(op.summary || "")}</span>${op.security ? '<span class="lock">🔒 token</span>' : ""}</summary><div class="body">
        ${op.description ? `<p>${esc(op.description)}</p>` : ""}
        ${params ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th></th></tr>${params}</table>` : ""}
        ${body ? `<h4>Request body</h4><pre>${esc(schemaOf(doc, body))}</pre>` : ""}
        <h4>Responses</h4><table>${responses}</table></div></details>`;
    }
  }
  document.getElementById("out").innerHTML = html;
}).catch(e => { document.getElementById("out").textContent = "Could not load the API description: " + e; });
