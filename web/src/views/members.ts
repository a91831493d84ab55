// A class's members page (its owner and admins): add by e-mail, import a
// CSV roster, make, copy and revoke invitation links, remove members. And
// the page an invitation link opens (`/invite/<token>`): it makes the
// signed-in user a member and takes them into the room.
import type { Api, Invitation, MemberRole, Room, Roster } from "../api";
import { alertBox, button, field, formatTime, h, replace } from "../dom";
import { describe } from "../errors";

const ROLE_WORDS: Record<MemberRole, string> = { student: "Student", co_teacher: "Co-teacher" };

/** A labelled role choice. */
function roleSelect(label: string): { wrap: HTMLElement; select: HTMLSelectElement } {
  const id = `f-role-${Math.random().toString(36).slice(2, 8)}`;
  const select = h("select", { id, name: "role" }, h("option", { value: "student" }, "Student"), h("option", { value: "co_teacher" }, "Co-teacher"));
  return { wrap: h("div", { class: "field" }, h("label", { for: id }, label), select), select };
}

export function membersView(api: Api, roomId: string): HTMLElement {
  const problem = alertBox();
  const heading = h("h1", {}, "Members");
  const memberList = h("ul", { class: "members", "aria-label": "Members" }, h("li", { class: "muted" }, "Loading members…"));
  const linkList = h("ul", { class: "invitations", "aria-label": "Invitation links" });
  const newLink = h("div", { class: "new-link" });
  let room: Room | null = null;

  const load = async () => {
    try {
      room ??= await api.room(roomId);
      heading.textContent = `Members of ${room.title}`;
      const [roster, links] = await Promise.all([api.roster(roomId), api.invitations(roomId)]);
      drawRoster(roster);
      drawLinks(links);
    } catch (err) {
      problem.show(describe(err));
    }
  };

  const drawRoster = (roster: Roster) => {
    if (roster.members.length === 0 && roster.pending.length === 0) {
      replace(memberList, h("li", { class: "muted" }, "No members yet: add students by e-mail, import a list, or send an invitation link."));
      return;
    }
    replace(
      memberList,
      ...roster.members.map((m) =>
        h("li", { class: "member" },
          h("span", {}, `${m.displayName} (${m.email}) · ${ROLE_WORDS[m.role]}`),
          button("Remove", async () => {
            try {
              await api.removeMember(roomId, m.userId);
              problem.show(`${m.displayName} is no longer a member.`, "info");
              await load();
            } catch (err) {
              problem.show(describe(err));
            }
          }, { class: "danger", "aria-label": `Remove ${m.displayName}` }),
        ),
      ),
      ...roster.pending.map((p) =>
        h("li", { class: "member pending" },
          h("span", {}, `${p.email} · ${ROLE_WORDS[p.role]} · has no account yet: joins when they register`),
          button("Remove", async () => {
            try {
              await api.removePending(roomId, p.email);
              await load();
            } catch (err) {
              problem.show(describe(err));
            }
          }, { class: "danger", "aria-label": `Remove ${p.email}` }),
        ),
      ),
    );
  };

  const drawLinks = (links: Invitation[]) => {
    if (links.length === 0) {
      replace(linkList, h("li", { class: "muted" }, "No working invitation links."));
      return;
    }
    replace(
      linkList,
      ...links.map((l) =>
        h("li", { class: "invitation" },
          h("span", {}, `${ROLE_WORDS[l.role]} link · until ${formatTime(l.expiresAt)} · used ${l.uses}${l.maxUses ? ` of ${l.maxUses}` : ""} times`),
          button("Revoke", async () => {
            try {
              await api.revokeInvitation(roomId, l.id);
              problem.show("The link no longer works.", "info");
              await load();
            } catch (err) {
              problem.show(describe(err));
            }
          }, { class: "danger", "aria-label": `Revoke link made ${formatTime(l.createdAt)}` }),
        ),
      ),
    );
  };

  // Add by e-mail.
  const email = field("E-mail", { name: "email", type: "email", required: true, maxlength: 254, autocomplete: "off" });
  const addRole = roleSelect("Role");
  const addForm = h("form", { class: "card", "aria-label": "Add a member" }, h("h2", {}, "Add by e-mail"), email.wrap, addRole.wrap, h("button", { type: "submit", class: "primary" }, "Add member"));
  addForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const added = await api.addMember(roomId, email.input.value, addRole.select.value as MemberRole);
      problem.show(added.result === "added"
        ? `${email.input.value} is a member now.`
        : `${email.input.value} has no account yet: they join the class when they register with this address.`, "info");
      email.input.value = "";
      await load();
    } catch (err) {
      problem.show(describe(err));
    }
  });

  // Import a CSV roster.
  const file = field("Roster file (CSV: email, role)", { name: "roster", type: "file", accept: ".csv,text/csv,text/plain" });
  const report = h("ul", { class: "import-report", "aria-label": "Import results" });
  const importForm = h("form", { class: "card", "aria-label": "Import a roster" }, h("h2", {}, "Import a list"), file.wrap, h("button", { type: "submit" }, "Import"), report);
  importForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const chosen = file.input.files?.[0];
    if (!chosen) return problem.show("Choose a CSV file first: one e-mail address per line, optionally followed by a comma and a role.");
    if (chosen.size > 64 * 1024) return problem.show("That file is too large: a roster may be at most 64 KiB.");
    try {
      const result = await api.importRoster(roomId, await chosen.text());
      problem.show(`${result.added} added, ${result.invitedNotRegistered} without an account yet (they join when they register), ${result.errors} refused.`, "info");
      replace(report, ...result.rows.filter((r) => r.result === "error").map((r) => h("li", {}, `Line ${r.line} (${r.email}): ${r.error ?? "refused"}`)));
      await load();
    } catch (err) {
      problem.show(describe(err));
    }
  });

  // Invitation links.
  const linkRole = roleSelect("The link makes");
  const hours = field("Works for (hours)", { name: "expiresInHours", type: "number", min: 1, max: 720, value: 168 });
  const uses = field("Most uses (empty: no limit)", { name: "maxUses", type: "number", min: 1, max: 10000 });
  const linkForm = h("form", { class: "card", "aria-label": "Make an invitation link" }, h("h2", {}, "Invitation links"), linkRole.wrap, hours.wrap, uses.wrap, h("button", { type: "submit" }, "Make a link"), newLink, linkList);
  linkForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const made = await api.createInvitation(roomId, {
        role: linkRole.select.value as MemberRole,
        expiresInHours: Number(hours.input.value),
        ...(uses.input.value ? { maxUses: Number(uses.input.value) } : {}),
      });
      const url = `${location.origin}${made.path}`;
      const box = h("input", { type: "text", readonly: true, value: url, "aria-label": "The new invitation link" });
      replace(newLink,
        h("p", {}, "Send this link to your students. It is shown only now: copy it before you leave this page."),
        box,
        button("Copy link", async () => {
          try {
            await navigator.clipboard.writeText(url);
            problem.show("The link is copied.", "info");
          } catch {
            box.select();
            problem.show("Copying is not allowed here: the link is selected, copy it with your keyboard.");
          }
        }),
      );
      await load();
    } catch (err) {
      problem.show(describe(err));
    }
  });

  void load();
  return h("main", { id: "main", class: "page" },
    heading,
    h("p", {}, h("a", { href: "/", "data-link": true }, "Back to the rooms")),
    problem,
    h("section", { "aria-label": "Members of the class" }, h("h2", {}, "Members"), memberList),
    addForm,
    importForm,
    linkForm,
  );
}

/** `/invite/<token>`: joins the class the link names, then opens its room. */
export function inviteView(api: Api, token: string, go: (path: string, message?: string) => void): HTMLElement {
  const status = h("p", { class: "loading", role: "status" }, "Opening the invitation…");
  const problem = alertBox();
  void (async () => {
    try {
      const joined = await api.acceptInvitation(token);
      go(`/rooms/${encodeURIComponent(joined.roomId)}`, `You are a member of ${joined.title}.`);
    } catch (err) {
      status.textContent = "";
      problem.show(describe(err, "invite"));
    }
  })();
  return h("main", { id: "main", class: "page" }, h("h1", {}, "Invitation"), status, problem, h("p", {}, h("a", { href: "/", "data-link": true }, "Go to the rooms")));
}
