// The account page: who you are, change password, two-factor sign-in, sign out everywhere.
import type { Api } from "../api";
import { alertBox, button, field, h } from "../dom";
import { describe } from "../errors";
import { twoFactorSection } from "./two-factor";

export function accountView(api: Api, go: (path: string, message?: string) => void, message = ""): HTMLElement {
  const user = api.user!;
  const wasRequired = api.enrolmentRequired;
  const mustChange = api.passwordChangeRequired;
  const notice = alertBox();
  if (message) notice.show(message, "info");
  const current = field("Current password", { name: "currentPassword", type: "password", autocomplete: "current-password", required: true });
  const next = field("New password (at least 8 characters, hard to guess)", { name: "newPassword", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const problem = alertBox();
  const submit = h("button", { type: "submit", class: "primary" }, "Change password");
  const form = h("form", { class: "card", "aria-labelledby": "pw-title" }, h("h2", { id: "pw-title" }, "Change password"), problem, current.wrap, next.wrap, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    problem.clear();
    submit.disabled = true;
    try {
      await api.changePassword(current.input.value, next.input.value);
      form.reset();
      // The temporary password is replaced: the rest of the app opens.
      if (mustChange) return go("/", "Password changed. Welcome!");
      problem.show("Password changed. Your other devices have been signed out.", "info");
    } catch (err) {
      problem.show(describe(err));
    } finally {
      submit.disabled = false;
    }
  });
  const outProblem = alertBox();
  const everywhere = button("Sign out everywhere", async () => {
    try {
      await api.logout(true);
      go("/signin", "You are signed out on every device.");
    } catch (err) {
      outProblem.show(describe(err));
    }
  }, { class: "danger" });
  return h(
    "main",
    { id: "main", class: "page" },
    h("h1", {}, "Your account"),
    notice,
    h("dl", { class: "card facts" },
      h("dt", {}, "Name"), h("dd", {}, user.displayName),
      h("dt", {}, "E-mail"), h("dd", {}, user.email),
      h("dt", {}, "Role"), h("dd", {}, user.role),
    ),
    form,
    // After enrolling, a token that was good only for enrolling is a full one: the rest of the app opens.
    twoFactorSection(api, () => {
      if (wasRequired && !api.enrolmentRequired) go("/", "Two-factor sign-in is on.");
    }),
    h("section", { class: "card", "aria-labelledby": "out-title" },
      h("h2", { id: "out-title" }, "Sessions"),
      h("p", {}, "Signs you out on every device and browser, this one included."),
      outProblem, everywhere),
  );
}
