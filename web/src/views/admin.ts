// Administration: users, their roles, disabling, creating (with a
// temporary password), resetting passwords and deleting accounts; each
// change that hurts to undo is confirmed in a dialog.
import type { Api, Role, User } from "../api";
import { alertBox, button, field, h, replace } from "../dom";
import { describe } from "../errors";
import { auditSection, webhooksSection } from "./admin-ops";

const ROLES: Role[] = ["student", "instructor", "admin"];

/** A modal confirmation (a real `<dialog>`: focus kept inside, Escape cancels). */
export function confirmDialog(question: string, confirmLabel: string, danger = true): Promise<boolean> {
  return new Promise((resolve) => {
    const yes = h("button", { type: "button", class: danger ? "danger" : "primary" }, confirmLabel);
    const no = h("button", { type: "button" }, "Cancel");
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-q" },
      h("p", { id: "confirm-q" }, question), h("div", { class: "row" }, no, yes));
    const done = (answer: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    yes.addEventListener("click", () => done(true));
    no.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (ev) => { ev.preventDefault(); done(false); });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/** Shows a temporary password once, with what to do with it. */
function temporaryPasswordNote(who: string, password: string): HTMLElement {
  return h("div", { class: "card temporary", role: "status" },
    h("p", {}, `Temporary password for ${who}: `, h("code", { class: "temporary-password" }, password)),
    h("p", { class: "muted" }, "Give it to them privately. It is shown only now; they must choose a new password when they sign in."));
}

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
      if (!(await confirmDialog(`Make ${u.displayName} ${select.value === "admin" ? "an" : "a"} ${select.value}?`, "Change role", false))) {
        select.value = u.role;
        return;
      }
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
      if (!u.disabled && !(await confirmDialog(`Disable ${u.displayName}? They are signed out everywhere at once.`, "Disable"))) return;
      try {
        await api.updateUser(u.id, { disabled: !u.disabled });
        await load();
      } catch (err) {
        problem.show(describe(err));
      }
    }, { class: u.disabled ? "small" : "small danger", "aria-label": `${u.disabled ? "Enable" : "Disable"} ${u.displayName}` });
    const reset = button("Reset password", async () => {
      problem.clear();
      if (!(await confirmDialog(`Give ${u.displayName} a new temporary password? Their current password stops working and they are signed out.`, "Reset password"))) return;
      try {
        const answer = await api.resetPassword(u.id);
        replace(notes, temporaryPasswordNote(u.displayName, answer.temporaryPassword));
      } catch (err) {
        problem.show(describe(err));
      }
    }, { class: "small", "aria-label": `Reset password of ${u.displayName}` });
    const remove = button("Delete", async () => {
      problem.clear();
      if (!(await confirmDialog(`Delete the account of ${u.displayName} (${u.email})? This cannot be undone.`, "Delete account"))) return;
      try {
        await api.deleteUser(u.id);
        problem.show(`${u.displayName}'s account is deleted.`, "info");
        await load();
      } catch (err) {
        problem.show(describe(err));
      }
    }, { class: "small danger", "aria-label": `Delete ${u.displayName}` });
    return h("tr", { class: u.disabled ? "disabled" : "" },
      h("td", {}, u.displayName, u.disabled ? h("span", { class: "badge" }, "Disabled") : null, u.twoFactor ? h("span", { class: "badge", title: "Signs in with a code from an authenticator app" }, "Two-factor") : null),
      h("td", {}, u.email),
      h("td", {}, select),
      h("td", { class: "actions" }, toggle, reset, remove),
    );
  };

  const notes = h("div", { class: "notes" });
  const email = field("E-mail", { name: "email", type: "email", required: true, autocomplete: "off" });
  const name = field("Name", { name: "displayName", required: true, maxlength: 100, autocomplete: "off" });
  const roleId = `f-newrole-${Math.random().toString(36).slice(2, 8)}`;
  const newRole = h("select", { id: roleId, name: "role" }, ...ROLES.map((r) => h("option", { value: r }, r)));
  const createProblem = alertBox();
  const create = h("form", { class: "card create-user", "aria-labelledby": "new-user-title" },
    h("h2", { id: "new-user-title" }, "Add a user"), createProblem, email.wrap, name.wrap,
    h("div", { class: "field" }, h("label", { for: roleId }, "Role"), newRole),
    h("p", { class: "muted" }, "They get a temporary password (shown once) and choose their own at first sign-in."),
    h("button", { type: "submit", class: "primary" }, "Create user"));
  create.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    createProblem.clear();
    try {
      const answer = await api.createUser({ email: email.input.value, displayName: name.input.value, role: newRole.value as Role });
      replace(notes, temporaryPasswordNote(answer.user.displayName, answer.temporaryPassword));
      create.reset();
      await load();
    } catch (err) {
      createProblem.show(describe(err));
    }
  });

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
    notes,
    create,
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
