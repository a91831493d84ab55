// A few typed DOM helpers: enough to build views without a framework.

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

/**
 * Creates an element. Attributes starting with `on` become listeners; `true`
 * sets a boolean attribute, `false`/`null`/`undefined` leave it out.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** Replaces all children of `parent`. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

/**
 * A button with a visible text label (icons are decorative): the label is
 * both the accessible name and what sighted users read.
 */
export function button(label: string, onClick: (ev: MouseEvent) => void, attrs: Attrs = {}): HTMLButtonElement {
  const b = h("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", (ev) => onClick(ev as MouseEvent));
  return b;
}

/** A labelled form field; returns the wrapper and the input. */
export function field(
  label: string,
  attrs: Attrs & { name: string },
): { wrap: HTMLElement; input: HTMLInputElement } {
  const id = `f-${attrs.name}-${Math.random().toString(36).slice(2, 8)}`;
  const input = h("input", { id, ...attrs });
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), input);
  return { wrap, input };
}

/** A message area that screen readers announce. */
export function alertBox(): HTMLElement & { show(text: string, kind?: "error" | "info"): void; clear(): void } {
  const el = h("p", { class: "alert", role: "alert", hidden: true }) as unknown as HTMLElement & {
    show(text: string, kind?: "error" | "info"): void;
    clear(): void;
  };
  el.show = (text, kind = "error") => {
    el.textContent = text;
    el.className = `alert alert-${kind}`;
    el.hidden = false;
  };
  el.clear = () => {
    el.textContent = "";
    el.hidden = true;
  };
  return el;
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
