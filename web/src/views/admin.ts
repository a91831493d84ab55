// Administration: users, their roles, disabling accounts.
import type { Api, Role, User } from "../api";
import { alertBox, button, h, replace } from "../dom";
import { describe } from "../errors";
import { auditSection, webhooksSection } from "./admin-ops";

const ROLES: Role[] = ["student", "instructor", "admin"];

export function adminView(api: Api): HTMLElement {
  const problem = alertBox();
  const search = h("input", { type: "search", name: "q", "aria-label": "Search users", placeholder: "Search by name or e-mail" });
  const body = h("tbody");
  const pager = h("div", { class: "row" });
  let page = 1;

  const load = async () => {
    try {
      const result = await api.users(search.value.trim(), page);
      replace(body, ...result.items.map(row));
      if (result.items.length === 0) body.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No users match.")));
      const pages = Math.max(1, Math.ceil(result.total / result.perPage));
      replace(
        pager,
        button("Previous", () => { page -= 1; void load(); }, { disabled: page <= 1 }),
        h("span", {}, `Page ${page} of ${pages} · ${result.total} users`),
        button("Next", () => { page += 1; void load(); }, { disabled: page >= pages }),
      );
    } catch (err) {
      problem.show(describe(err));
    }
  };

  const row = (u: User) => {
    const id = `role-${u.id}`;
    const select = h("select", { id, "aria-label": `Role of ${u.displayName}` }, ...ROLES.map((r) => h("option", { value: r, selected: r === u.role }, r)));
    select.addEventListener("change", async () => {
      problem.clear();
      try {
        await api.updateUser(u.id, { role: select.value as Role });
        problem.show(`${u.displayName} is now ${select.value === "student" ? "a" : "an"} ${select.value}.`, "info");
      } catch (err) {
        select.value = u.role;
        problem.show(describe(err));
      }
    });
    const toggle = button(u.disabled ? "Enable" : "Disable", async () => {
      problem.clear();
      try {
        await api.updateUser(u.id, { disabled: !u.disabled });
        await load();
      } catch (err) {
        problem.show(describe(err));
      }
    }, { class: u.disabled ? "small" : "small danger", "aria-label": `${u.disabled ? "Enable" : "Disable"} ${u.displayName}` });
    return h("tr", { class: u.disabled ? "disabled" : "" },
      h("td", {}, u.displayName, u.disabled ? h("span", { class: "badge" }, "Disabled") : null, u.twoFactor ? h("span", { class: "badge", title: "Signs in with a code from an authenticator app" }, "Two-factor") : null),
      h("td", {}, u.email),
      h("td", {}, select),
      h("td", {}, toggle),
    );
  };

  let debounce: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { page = 1; void load(); }, 250);
  });
  void load();
  return h(
    "main",
    { id: "main", class: "page" },
    h("h1", {}, "Users and roles"),
    problem,
    search,
    h("div", { class: "table-wrap" },
      h("table", { class: "users" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "E-mail"), h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Account"))),
        body)),
    pager,
    // Operations (issue 20).
    auditSection(api),
    webhooksSection(api),
  );
}
