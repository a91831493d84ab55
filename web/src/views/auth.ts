// Sign in and register.
import type { Api } from "../api";
import { alertBox, field, h } from "../dom";
import { describe } from "../errors";

export function signInView(api: Api, go: (path: string) => void, message = ""): HTMLElement {
  const email = field("E-mail", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = field("Password", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const problem = alertBox();
  if (message) problem.show(message, "info");
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to VTP"),
    problem, email.wrap, password.wrap, submit,
    // The page to come back to (an invitation link, say) survives the detour through registering.
    h("p", {}, "No account yet? ", h("a", { href: `/register${location.search}`, "data-link": true }, "Create one")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    problem.clear();
    submit.disabled = true;
    try {
      if ((await api.login(email.input.value, password.input.value)) === "second-factor") {
        form.replaceWith(codeForm(api, done));
        return;
      }
      done();
    } catch (err) {
      problem.show(describe(err, "login"));
      password.input.select();
    } finally {
      submit.disabled = false;
    }
  });
  const done = () => {
    const next = new URLSearchParams(location.search).get("next");
    go(next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
  };
  queueMicrotask(() => email.input.focus());
  return h("main", { id: "main", class: "center" }, form);
}

/** The second step of a two-factor sign-in. */
function codeForm(api: Api, done: () => void): HTMLElement {
  const code = field("Code from your authenticator app", { name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true, maxlength: 16 });
  const problem = alertBox();
  const submit = h("button", { type: "submit", class: "primary" }, "Verify");
  const form = h("form", { class: "card narrow", "aria-labelledby": "code-title" },
    h("h1", { id: "code-title" }, "Two-factor sign-in"),
    h("p", {}, "Enter the 6-digit code your authenticator app shows for VTP. Lost your phone? Enter one of your recovery codes instead."),
    problem, code.wrap, submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    problem.clear();
    submit.disabled = true;
    try {
      await api.verifySecondFactor(code.input.value);
      done();
    } catch (err) {
      problem.show(describe(err, "code"));
      code.input.select();
    } finally {
      submit.disabled = false;
    }
  });
  queueMicrotask(() => code.input.focus());
  return form;
}

export function registerView(api: Api, go: (path: string) => void): HTMLElement {
  const name = field("Your name (shown to others)", { name: "displayName", autocomplete: "name", required: true, maxlength: 64 });
  const email = field("E-mail", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = field("Password (at least 8 characters)", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const problem = alertBox();
  const submit = h("button", { type: "submit", class: "primary" }, "Create account");
  const form = h("form", { class: "card narrow", "aria-labelledby": "register-title" },
    h("h1", { id: "register-title" }, "Create a student account"),
    problem, name.wrap, email.wrap, password.wrap, submit,
    h("p", {}, "Already registered? ", h("a", { href: "/signin", "data-link": true }, "Sign in")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    problem.clear();
    submit.disabled = true;
    try {
      await api.register(email.input.value, password.input.value, name.input.value);
      const next = new URLSearchParams(location.search).get("next");
      go(next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
    } catch (err) {
      problem.show(describe(err, "register"));
    } finally {
      submit.disabled = false;
    }
  });
  queueMicrotask(() => name.input.focus());
  return h("main", { id: "main", class: "center" }, form);
}
