// The app's entry: a tiny router over the History API, the site header, and
// the pages. Each page returns its element (and optionally a cleanup).
import { Api } from "./api";
import { button, h, replace } from "./dom";
import { describe, SignalError } from "./errors";
import { loadChoices, preJoinView, wasInRoom } from "./room/prejoin";
import { roomView } from "./room/view";
import { accountView } from "./views/account";
import { adminView } from "./views/admin";
import { afterClassIndex, sessionsView, sessionView } from "./views/afterclass";
import { registerView, signInView } from "./views/auth";
import { operationsView } from "./views/operations";
import { lobbyView } from "./views/lobby";
import { inviteView, membersView } from "./views/members";

const api = new Api();
const app = document.getElementById("app")!;
let cleanup: (() => void) | null = null;
/** A message for the next page (why we left a room, …). */
let flash = "";

function go(path: string, message = ""): void {
  flash = message;
  if (path !== location.pathname + location.search) history.pushState(null, "", path);
  void route();
}

/** The sign-in page, coming back to `path` (a room link, say) once signed in. */
function signInPath(path: string): string {
  return path === "/" || path === "/signin" || path === "/register" ? "/signin" : `/signin?next=${encodeURIComponent(path)}`;
}

api.onSignedOut = () => {
  if (location.pathname !== "/signin" && location.pathname !== "/register") go(signInPath(location.pathname + location.search), "Please sign in again.");
};

function header(): HTMLElement {
  const user = api.user!;
  const link = (href: string, text: string) =>
    h("a", { href, "data-link": true, ...(location.pathname === href ? { "aria-current": "page" } : {}) }, text);
  return h(
    "header",
    { class: "site" },
    h("a", { href: "/", "data-link": true, class: "brand" }, "VTP"),
    h("nav", { "aria-label": "Main" }, link("/", "Rooms"), link("/recordings", "After class"), user.role === "admin" ? link("/admin", "Users") : null, user.role === "admin" ? link("/admin/operations", "Operations") : null, link("/account", "Account")),
    h("span", { class: "who" }, `${user.displayName} · ${user.role}`),
    // Signed out here even when the server cannot be told (the tokens are forgotten either way).
    button("Sign out", () => void api.logout(false).catch(() => {}).finally(() => go("/signin", "You are signed out."))),
  );
}

async function route(): Promise<void> {
  cleanup?.();
  cleanup = null;
  const path = location.pathname;
  const message = flash;
  flash = "";
  if (!api.user) {
    if (path === "/register") return show(registerView(api, go), "Create an account");
    if (path !== "/signin") {
      history.replaceState(null, "", signInPath(path));
    }
    return show(signInView(api, go, message), "Sign in");
  }
  if (path === "/signin" || path === "/register") return go("/");
  // Signed in with a temporary password an admin gave: only changing it works.
  if (api.passwordChangeRequired) {
    if (path !== "/account") history.replaceState(null, "", "/account");
    const why = "You signed in with a temporary password. Choose your own password to continue.";
    return show(withHeader(accountView(api, go, message || why)), "Account");
  }
  // The role requires two-factor sign-in and the account has none yet: only the account page works.
  if (api.enrolmentRequired) {
    if (path !== "/account") history.replaceState(null, "", "/account");
    const why = "Your role requires two-factor sign-in. Turn it on below to continue.";
    return show(withHeader(accountView(api, go, message || why)), "Account");
  }
  // Classes: an invitation link, a room's members page.
  const inviteMatch = /^\/invite\/([^/]+)$/.exec(path);
  if (inviteMatch) return show(withHeader(inviteView(api, decodeURIComponent(inviteMatch[1]), go)), "Invitation");
  const membersMatch = /^\/rooms\/([^/]+)\/members$/.exec(path);
  if (membersMatch) return show(withHeader(membersView(api, decodeURIComponent(membersMatch[1]))), "Members");
  const roomMatch = /^\/rooms\/([^/]+)$/.exec(path);
  if (roomMatch) return enterRoom(decodeURIComponent(roomMatch[1]));
  // After class (views/afterclass.ts).
  const afterMatch = /^\/rooms\/([^/]+)\/sessions(?:\/([^/]+))?$/.exec(path);
  if (afterMatch?.[2]) {
    const page = sessionView(api, decodeURIComponent(afterMatch[1]), decodeURIComponent(afterMatch[2]));
    cleanup = page.stop;
    return show(withHeader(page.el), "After class");
  }
  if (afterMatch) return show(withHeader(sessionsView(api, decodeURIComponent(afterMatch[1]))), "After class");
  if (path === "/recordings") return show(withHeader(afterClassIndex(api)), "After class");
  if (path === "/account") return show(withHeader(accountView(api, go, message)), "Account");
  if (path === "/admin" && api.user.role === "admin") return show(withHeader(adminView(api)), "Users");
  if (path === "/admin/operations" && api.user.role === "admin") {
    const ops = operationsView(api);
    cleanup = ops.stop;
    return show(withHeader(ops.el), "Operations");
  }
  if (path !== "/") history.replaceState(null, "", "/");
  const lobby = lobbyView(api, message);
  cleanup = lobby.stop;
  show(withHeader(lobby.el), "Rooms");
}

function withHeader(page: HTMLElement): DocumentFragment {
  const f = document.createDocumentFragment();
  f.append(header(), page);
  return f;
}

function show(content: Node, title: string): void {
  document.title = `${title} · VTP`;
  replace(app, content);
  document.body.dataset.page = title.toLowerCase().replace(/\s+/g, "-");
  // A new page: screen readers start at its heading (forms focus their first field themselves).
  const heading = app.querySelector<HTMLElement>("main h1");
  if (heading && !app.querySelector("form.narrow")) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

async function enterRoom(id: string): Promise<void> {
  const here = location.pathname;
  document.body.dataset.page = "room";
  replace(app, h("main", { id: "main", class: "center" }, h("p", { class: "loading", role: "status" }, "Joining the room…")));
  let room;
  try {
    room = await api.room(id);
  } catch (err) {
    // A session that ended meanwhile comes back here after signing in.
    return go(api.user ? "/" : signInPath(here), describe(err, "join"));
  }
  if (room.status === "closed") return go("/", describe(new SignalError("room_closed", "closed"), "join"));
  document.title = `${room.title} · VTP`;
  // The pre-join screen, unless this tab was in the room already (a reload,
  // or signing in again after the session expired: straight back in).
  let choices = loadChoices();
  if (!wasInRoom(room.id)) {
    const student = api.user?.role === "student";
    const pre = preJoinView(api, room, !student || room.settings.allowStudentVideo);
    cleanup = pre.stop;
    show(pre.el, room.title);
    document.body.dataset.page = "prejoin";
    const chosen = await pre.choices;
    // Gone elsewhere meanwhile (the route's cleanup resolved with null).
    if (!chosen || location.pathname !== here) return;
    cleanup = null;
    choices = chosen;
    document.body.dataset.page = "room";
  }
  let left = false;
  const teardown = await roomView(app, api, room, choices, (message) => {
    left = true;
    if (location.pathname !== here) return;
    // Signed out while in the room (the session ended): back to this room after signing in.
    go(api.user ? "/" : signInPath(here), message);
  });
  if (!left) cleanup = teardown;
}

// Links marked data-link stay in the app.
document.addEventListener("click", (ev) => {
  const a = (ev.target as Element).closest?.("a[data-link]") as HTMLAnchorElement | null;
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  go(a.pathname + a.search);
});
window.addEventListener("popstate", () => void route());
void route();
