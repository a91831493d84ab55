// Administration, operations part (issue 20): the audit log (filter, page,
// export) and webhook endpoints with each one's delivery log.
import type { Api } from "../api";
import { alertBox, button, formatTime, h, replace } from "../dom";
import { describe } from "../errors";

interface AuditEvent {
  id: string;
  at: string;
  event: string;
  actorId: string | null;
  actor: string | null;
  target: string | null;
  address: string | null;
  detail: unknown;
}

interface Endpoint {
  id: string;
  url: string;
  events: string[];
  enabled: boolean;
  disabledReason: string | null;
  createdAt: string;
}

interface Delivery {
  id: number;
  event: string;
  state: "pending" | "delivered" | "failed";
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  finishedAt: string | null;
}

interface Paged<T> {
  items: T[];
  nextCursor?: string;
}

const WEBHOOK_EVENTS = ["room.started", "room.ended", "participant.joined", "participant.left", "recording.ready", "export.ready", "user.created"];

/** The audit log: newest first, filtered by event name, a page at a time. */
export function auditSection(api: Api): HTMLElement {
  const problem = alertBox();
  const filter = h("input", { type: "search", name: "event", "aria-label": "Filter by event", placeholder: "Event, e.g. auth.sign_in_failed" });
  const body = h("tbody");
  const more = h("div", { class: "row" });
  let cursor: string | undefined;

  const query = () => {
    const event = filter.value.trim();
    return event ? `&event=${encodeURIComponent(event)}` : "";
  };
  const load = async (append: boolean) => {
    problem.clear();
    try {
      const page = await api.call<Paged<AuditEvent>>("GET", `/audit?limit=50${query()}${append && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      cursor = page.nextCursor;
      const rows = page.items.map((e) =>
        h("tr", {},
          h("td", {}, formatTime(e.at)),
          h("td", {}, h("code", {}, e.event)),
          h("td", {}, e.actor ?? ""),
          h("td", {}, e.target ?? ""),
          h("td", {}, e.address ?? ""),
          h("td", {}, e.detail ? JSON.stringify(e.detail) : "")));
      if (append) body.append(...rows);
      else replace(body, ...rows);
      if (!append && rows.length === 0) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No audit events match.")));
      replace(more, cursor ? button("Older events", () => void load(true)) : null);
    } catch (err) {
      problem.show(describe(err));
    }
  };
  const download = async (format: "csv" | "jsonl") => {
    problem.clear();
    try {
      const res = await fetch(`/api/v1/audit/export?format=${format}${query()}`, { headers: { authorization: `Bearer ${await api.token()}` } });
      if (!res.ok) throw new Error(`The export failed (HTTP ${res.status}).`);
      const link = h("a", { href: URL.createObjectURL(await res.blob()), download: `audit.${format}` });
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (err) {
      problem.show(describe(err));
    }
  };
  let debounce: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void load(false), 250);
  });
  void load(false);
  return h("section", { class: "audit", "aria-labelledby": "audit-heading" },
    h("h2", { id: "audit-heading" }, "Audit"),
    problem,
    h("div", { class: "row" }, filter, button("Export CSV", () => void download("csv"), { class: "small" }), button("Export JSON lines", () => void download("jsonl"), { class: "small" })),
    h("div", { class: "table-wrap" },
      h("table", { class: "audit-log" },
        h("thead", {}, h("tr", {}, ...["When", "Event", "Who", "Target", "Address", "Detail"].map((c) => h("th", { scope: "col" }, c)))),
        body)),
    more);
}

/** Webhook endpoints: register (the secret is shown once), turn on/off, delete, delivery log. */
export function webhooksSection(api: Api): HTMLElement {
  const problem = alertBox();
  const list = h("div", { class: "webhooks" });
  const url = h("input", { type: "url", name: "url", "aria-label": "Endpoint URL", placeholder: "https://example.org/vtp-hook" });
  const boxes = WEBHOOK_EVENTS.map((e) => h("input", { type: "checkbox", value: e, checked: true, "aria-label": e }));

  const deliveries = async (endpoint: Endpoint, into: HTMLElement) => {
    try {
      const page = await api.call<Paged<Delivery>>("GET", `/webhooks/${endpoint.id}/deliveries?limit=20`);
      replace(into, h("table", { class: "deliveries" },
        h("thead", {}, h("tr", {}, ...["Created", "Event", "State", "Attempts", "Last answer"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, ...page.items.map((d) => h("tr", {},
          h("td", {}, formatTime(d.createdAt)),
          h("td", {}, h("code", {}, d.event)),
          h("td", {}, d.state),
          h("td", {}, String(d.attempts)),
          h("td", {}, d.lastStatus ? `HTTP ${d.lastStatus}` : d.lastError ?? ""))))));
    } catch (err) {
      problem.show(describe(err));
    }
  };
  const load = async () => {
    try {
      const endpoints = await api.call<Endpoint[]>("GET", "/webhooks");
      replace(list, ...endpoints.map((e) => {
        const log = h("div", { class: "delivery-log" });
        return h("article", { class: "webhook" },
          h("p", {}, h("strong", {}, e.url), e.enabled ? null : h("span", { class: "badge" }, "Off")),
          h("p", { class: "muted" }, e.events.join(", "), e.disabledReason ? ` · ${e.disabledReason}` : ""),
          h("div", { class: "row" },
            button(e.enabled ? "Turn off" : "Turn on", async () => {
              try { await api.call("PATCH", `/webhooks/${e.id}`, { enabled: !e.enabled }); await load(); } catch (err) { problem.show(describe(err)); }
            }, { class: "small" }),
            button("Delivery log", () => void deliveries(e, log), { class: "small" }),
            button("Delete", async () => {
              try { await api.call("DELETE", `/webhooks/${e.id}`); await load(); } catch (err) { problem.show(describe(err)); }
            }, { class: "small danger" })),
          log);
      }));
      if (endpoints.length === 0) list.append(h("p", { class: "muted" }, "No webhook endpoints."));
    } catch (err) {
      problem.show(describe(err));
    }
  };
  const add = button("Add endpoint", async () => {
    problem.clear();
    try {
      const events = boxes.filter((b) => b.checked).map((b) => b.value);
      const created = await api.call<Endpoint & { secret: string }>("POST", "/webhooks", { url: url.value.trim(), events });
      problem.show(`Endpoint added. Its signing secret, shown only now: ${created.secret}`, "info");
      url.value = "";
      await load();
    } catch (err) {
      problem.show(describe(err));
    }
  });
  void load();
  return h("section", { class: "webhooks-admin", "aria-labelledby": "webhooks-heading" },
    h("h2", { id: "webhooks-heading" }, "Webhooks"),
    problem,
    h("div", { class: "row" }, url, add),
    h("fieldset", {}, h("legend", {}, "Events"), ...boxes.map((b) => h("label", {}, b, ` ${b.value}`))),
    list);
}
