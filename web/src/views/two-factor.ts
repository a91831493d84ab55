// The account page's two-factor sign-in section: enrol (QR code and key for
// an authenticator app, confirmed by a first code, then ten recovery codes
// shown once) or turn it off.
import type { Api } from "../api";
import { alertBox, button, field, h, replace } from "../dom";
import { describe } from "../errors";

/** The server's SVG of the QR code, as a DOM node (parsed, never as HTML). */
function qrImage(svg: string): Node {
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg") return h("p", {}, "The QR code cannot be shown: type the key instead.");
  const node = document.importNode(root, true);
  node.setAttribute("class", "qr");
  return node;
}

export function twoFactorSection(api: Api, changed: () => void): HTMLElement {
  const problem = alertBox();
  const body = h("div", {});
  const section = h("section", { class: "card", "aria-labelledby": "tfa-title" }, h("h2", { id: "tfa-title" }, "Two-factor sign-in"), problem, body);

  const showOff = () =>
    replace(body,
      h("p", {}, "Off. With it on, signing in also asks for a code from an authenticator app on your phone, so a stolen password is not enough."),
      button("Turn on two-factor sign-in", () => void start(), { class: "primary" }),
    );

  const showOn = () => {
    const proof = field("A code from your app, or a recovery code", { name: "code", autocomplete: "one-time-code", maxlength: 16 });
    const password = field("Or your password", { name: "password", type: "password", autocomplete: "current-password" });
    const off = h("button", { type: "submit", class: "danger" }, "Turn off two-factor sign-in");
    const form = h("form", {}, proof.wrap, password.wrap, off);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      problem.clear();
      try {
        await api.disableTwoFactor(proof.input.value.trim() ? { code: proof.input.value } : { password: password.input.value });
        problem.show("Two-factor sign-in is off.", "info");
        showOff();
        changed();
      } catch (err) {
        problem.show(describe(err));
      }
    });
    replace(body, h("p", {}, "On: signing in asks for a code from your authenticator app."), form);
  };

  const start = async () => {
    problem.clear();
    let setup;
    try {
      setup = await api.setupTwoFactor();
    } catch (err) {
      return problem.show(describe(err));
    }
    const code = field("Code from the app", { name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true, maxlength: 6 });
    const confirm = h("button", { type: "submit", class: "primary" }, "Confirm");
    const form = h("form", {}, code.wrap, confirm);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      problem.clear();
      confirm.disabled = true;
      try {
        const codes = await api.confirmTwoFactor(code.input.value);
        problem.show("Two-factor sign-in is on.", "info");
        replace(body,
          h("p", {}, "Your recovery codes: each one signs you in once if you lose your phone. Write them down or print them now; they are not shown again."),
          h("ol", { class: "recovery-codes" }, ...codes.map((c) => h("li", {}, h("code", {}, c)))),
          button("I have kept them", () => { showOn(); changed(); }, { class: "primary" }),
        );
      } catch (err) {
        problem.show(describe(err));
      } finally {
        confirm.disabled = false;
      }
    });
    replace(body,
      h("p", {}, "Scan this QR code with an authenticator app (for example FreeOTP, Aegis or Google Authenticator), then type the 6-digit code it shows."),
      qrImage(setup.qrSvg),
      h("p", {}, "No camera? Type this key into the app: ", h("code", { class: "totp-key" }, setup.secret)),
      h("p", { class: "muted" }, "Or open this link on the phone: ", h("a", { href: setup.otpauthUri, class: "otpauth" }, "add to authenticator app")),
      form,
    );
    queueMicrotask(() => code.input.focus());
  };

  if (api.user?.twoFactor) showOn();
  else showOff();
  return section;
}
