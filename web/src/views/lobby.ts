// The lobby: your classes (rooms you own or are a member of) and the rooms
// you can join, with live head counts; instructors and admins create rooms
// and edit their own (and manage who is in them: views/members.ts).
import type { Api, Room, WaitingRoomMode } from "../api";
import { alertBox, button, field, h, replace } from "../dom";
import { connectivityCard } from "../connectivity";
import { describe } from "../errors";
import { calendarLinkSection, nextSessionText, scheduleSection } from "./schedule";

/** How often live head counts are refreshed. */
const POLL_MS = 5000;

export function lobbyView(api: Api, message = ""): { el: HTMLElement; stop(): void } {
  const user = api.user!;
  const canCreate = user.role === "instructor" || user.role === "admin";
  const list = h("ul", { class: "rooms", "aria-label": "Rooms" }, h("li", { class: "muted" }, "Loading rooms…"));
  const classes = h("ul", { class: "rooms", "aria-label": "My classes" }, h("li", { class: "muted" }, "Loading your classes…"));
  /** Ids of the caller's classes: listed under "My classes", not again below. */
  let mine = new Set<string>();
  const problem = alertBox();
  if (message) problem.show(message, "info");
  const counts = new Map<string, number>();
  let rooms: Room[] = [];
  let editing: string | null = null;
  /** What the list shows (ids, states, titles); null until the first answer, so an empty first answer is drawn too. */
  let shown: string | null = null;

  const load = async () => {
    try {
      // Live classes first, closed rooms last (newest first within each, as the API lists them).
      const rank = { live: 0, open: 1, closed: 2 } as const;
      const [all, own] = await Promise.all([api.rooms(), api.rooms("", true)]);
      rooms = all.items.sort((a, b) => rank[a.status] - rank[b.status]);
      mine = new Set(own.items.map((r) => r.id));
      await Promise.all(
        rooms
          .filter((r) => r.status === "live")
          .map(async (r) => counts.set(r.id, (await api.participants(r.id)).peers.length)),
      );
      for (const r of rooms) if (r.status !== "live") counts.set(r.id, 0);
      // Rebuild only when the rooms changed, and never under someone typing in a form.
      const now = rooms.map((r) => `${r.id}|${r.status}|${r.title}|${mine.has(r.id)}|${JSON.stringify(r.schedule ?? null)}`).join("\n");
      if (now !== shown && editing === null) render();
      else updateStates();
    } catch (err) {
      problem.show(describe(err));
    }
  };

  const mayEdit = (r: Room) => user.role === "admin" || r.ownerId === user.id;

  const stateText = (r: Room) => {
    const n = counts.get(r.id) ?? 0;
    const next = r.status === "closed" ? null : nextSessionText(r);
    const state = r.status === "closed" ? "Archived" : n > 0 ? `Live · ${n} ${n === 1 ? "person" : "people"}` : "Open";
    return next ? `${state} · Next class: ${next}` : state;
  };
  const updateStates = () => {
    for (const r of rooms) {
      for (const ul of [classes, list]) {
        const el = ul.querySelector(`[data-room-id="${CSS.escape(r.id)}"] .room-state`);
        if (el) el.textContent = stateText(r);
      }
    }
  };

  const render = () => {
    shown = rooms.map((r) => `${r.id}|${r.status}|${r.title}|${mine.has(r.id)}|${JSON.stringify(r.schedule ?? null)}`).join("\n");
    const own = rooms.filter((r) => mine.has(r.id));
    const others = rooms.filter((r) => !mine.has(r.id));
    if (own.length === 0) {
      const none = rooms.length === 0
        ? canCreate ? "No rooms yet: create the first one above." : "No rooms yet. Your instructor will create one, or send you an invitation link."
        : canCreate ? "No classes of yours yet: create one above." : "No classes yet. Open the invitation link your teacher sent you.";
      replace(classes, h("li", { class: "muted" }, none));
    } else {
      replace(classes, ...own.map(item));
    }
    if (others.length === 0) {
      replace(list, h("li", { class: "muted" }, "No other rooms are open to you."));
    } else {
      replace(list, ...others.map(item));
    }
  };

  const item = (r: Room) => {
    const join = h("a", { href: `/rooms/${encodeURIComponent(r.id)}`, "data-link": true, class: "button primary", "aria-label": `Join ${r.title}` }, "Join");
    return h(
      "li",
      { class: `room-item status-${r.status}`, "data-room-id": r.id },
      h("div", { class: "room-info" }, h("h3", {}, r.title), h("span", { class: "room-state" }, stateText(r))),
      h(
        "div",
        { class: "room-actions" },
        r.status === "closed" ? null : join,
        h("a", { href: `/rooms/${encodeURIComponent(r.id)}/sessions`, "data-link": true, class: "button", "aria-label": `After class: ${r.title}` }, "After class"),
        mayEdit(r) ? h("a", { href: `/rooms/${encodeURIComponent(r.id)}/members`, "data-link": true, class: "button", "aria-label": `Members of ${r.title}` }, "Members") : null,
        mayEdit(r) ? button(editing === r.id ? "Cancel" : "Edit", () => { editing = editing === r.id ? null : r.id; render(); }, { "aria-label": `${editing === r.id ? "Cancel editing" : "Edit"} ${r.title}` }) : null,
      ),
      editing === r.id ? roomForm(r) : null,
      editing === r.id ? scheduleSection(api, r, () => { editing = null; shown = null; void load(); }) : null,
      // Students (and co-teachers) subscribe to a class's calendar too.
      !mayEdit(r) && r.schedule ? calendarDetails(r) : null,
    );
  };

  const calendarDetails = (r: Room) => {
    const d = h("details", { class: "calendar" }, h("summary", {}, "Add to calendar"));
    d.addEventListener("toggle", () => {
      if (d.open && d.childElementCount === 1) d.append(calendarLinkSection(api, r));
    }, { once: false });
    return d;
  };

  /** The create form (no room) or the edit form of `room`. */
  const roomForm = (room?: Room): HTMLElement => {
    const title = field("Title", { name: "title", required: true, maxlength: 120, value: room?.title ?? "" });
    const max = field("Most participants", { name: "maxParticipants", type: "number", min: 1, max: 1000, value: room?.settings.maxParticipants ?? 50 });
    const video = field("Students may turn on their camera", { name: "allowStudentVideo", type: "checkbox", checked: room?.settings.allowStudentVideo ?? true });
    const screen = field("Students may share their screen", { name: "allowStudentScreen", type: "checkbox", checked: room?.settings.allowStudentScreen ?? false });
    const accessId = `f-access-${Math.random().toString(36).slice(2, 8)}`;
    const access = h("select", { id: accessId, name: "access" },
      h("option", { value: "members", selected: (room?.settings.access ?? "members") === "members" }, "Members of the class only"),
      h("option", { value: "signed_in", selected: room?.settings.access === "signed_in" }, "Anyone signed in"),
    );
    const accessWrap = h("div", { class: "field" }, h("label", { for: accessId }, "Who may join"), access);
    const waitId = `f-wait-${Math.random().toString(36).slice(2, 8)}`;
    const waitingNow = room?.settings.waitingRoom ?? "off";
    const waiting = h("select", { id: waitId, name: "waitingRoom" },
      h("option", { value: "off", selected: waitingNow === "off" }, "No waiting room"),
      h("option", { value: "until_host_present", selected: waitingNow === "until_host_present" }, "Students wait until a teacher is in the room"),
      h("option", { value: "host_admits", selected: waitingNow === "host_admits" }, "A teacher lets each student in"),
    );
    const waitingWrap = h("div", { class: "field" }, h("label", { for: waitId }, "Waiting room"), waiting);
    video.wrap.classList.add("check");
    screen.wrap.classList.add("check");
    const formProblem = alertBox();
    const submit = h("button", { type: "submit", class: "primary" }, room ? "Save" : "Create room");
    const extra: HTMLElement[] = [];
    if (room) {
      const closed = room.status === "closed";
      extra.push(
        // Archiving hides a room that is no longer taught (no Join); ending a class is in the room.
        button(closed ? "Restore room" : "Archive room", async () => {
          try {
            await api.updateRoom(room.id, { status: closed ? "open" : "closed" });
            editing = null;
          // Redrawn even when the list looks the same (the form closes).
          shown = null;
            await load();
          } catch (err) {
            formProblem.show(describe(err));
          }
        }, { class: closed ? "" : "danger" }),
      );
    }
    const form = h("form", { class: room ? "room-form inline" : "room-form card", "aria-label": room ? `Edit ${room.title}` : "Create a room" },
      room ? null : h("h2", {}, "Create a room"),
      formProblem, title.wrap, accessWrap, waitingWrap, max.wrap, video.wrap, screen.wrap,
      h("div", { class: "row" }, submit, ...extra),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      formProblem.clear();
      const settings = {
        maxParticipants: Number(max.input.value),
        allowStudentVideo: video.input.checked,
        allowStudentScreen: screen.input.checked,
        access: access.value as "members" | "signed_in",
        waitingRoom: waiting.value as WaitingRoomMode,
      };
      submit.disabled = true;
      try {
        if (room) {
          await api.updateRoom(room.id, { title: title.input.value, settings });
          editing = null;
          // Redrawn even when the list looks the same (the form closes).
          shown = null;
        } else {
          await api.createRoom(title.input.value, settings);
          title.input.value = "";
        }
        await load();
      } catch (err) {
        formProblem.show(describe(err));
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  };

  void load();
  const timer = setInterval(() => void load(), POLL_MS);
  const el = h(
    "main",
    { id: "main", class: "page" },
    h("h1", {}, "Rooms"),
    problem,
    canCreate ? roomForm() : null,
    h("section", { "aria-label": "My classes" }, h("h2", {}, "My classes"), classes),
    h("section", { "aria-label": "Rooms you can join" }, h("h2", {}, "Other rooms open to you"), list),
    connectivityCard(api),
  );
  return { el, stop: () => clearInterval(timer) };
}
