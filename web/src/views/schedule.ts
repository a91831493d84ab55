// Scheduled sessions in the web app: the next session's words for the
// lobby ("Today 14:00", "Tue 9 Dec 10:00"), and the schedule form with the
// calendar subscribe link in a room's settings (lobby's Edit).
import type { Api, Room, Schedule, Weekday } from "../api";
import { alertBox, button, field, h } from "../dom";
import { describe } from "../errors";

const DAYS: { code: Weekday; label: string }[] = [
  { code: "mo", label: "Mon" }, { code: "tu", label: "Tue" }, { code: "we", label: "Wed" },
  { code: "th", label: "Thu" }, { code: "fr", label: "Fri" }, { code: "sa", label: "Sat" }, { code: "su", label: "Sun" },
];

/** "Now (until 15:30)", "Today 14:00", "Tomorrow 9:00", "Tue 9 Dec 10:00", in the browser's time zone. */
export function nextSessionText(room: Room, now = new Date()): string | null {
  const next = room.nextSession;
  if (!next) return null;
  const start = new Date(next.start);
  const end = new Date(next.end);
  const time = (d: Date) => d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  if (start <= now) return `Now, until ${time(end)}`;
  const day = (d: Date) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((day(start) - day(now)) / 86_400_000);
  if (days === 0) return `Today ${time(start)}`;
  if (days === 1) return `Tomorrow ${time(start)}`;
  const date = start.toLocaleDateString("en-GB", { weekday: "short", day: "numeric", month: "short" }).replace(",", "");
  return `${date} ${time(start)}`;
}

function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** The schedule part of a room's settings: one weekly (or one-off) series and the calendar link. */
export function scheduleSection(api: Api, room: Room, changed: () => void): HTMLElement {
  const entry = room.schedule?.entries[0];
  const recurrence = entry?.recurrence;
  const weekly = recurrence?.kind === "weekly" ? recurrence : null;
  const start = field("First session (date and time)", { name: "start", type: "datetime-local", required: true, value: entry?.start.slice(0, 16) ?? "" });
  const duration = field("Length in minutes", { name: "durationMinutes", type: "number", min: 5, max: 1440, value: entry?.durationMinutes ?? 60 });
  const zone = field("Time zone", { name: "timeZone", value: room.schedule?.timeZone ?? localZone(), required: true });
  const repeat = field("Repeats every week", { name: "weekly", type: "checkbox", checked: weekly !== null || !entry });
  repeat.wrap.classList.add("check");
  const dayBoxes = DAYS.map((d) => {
    const f = field(d.label, { name: `day-${d.code}`, type: "checkbox", checked: weekly?.weekdays.includes(d.code) ?? false });
    f.wrap.classList.add("check");
    return { code: d.code, ...f };
  });
  const days = h("fieldset", { class: "days" }, h("legend", {}, "On these days (the first session's day is added)"), ...dayBoxes.map((d) => d.wrap));
  const count = field("Number of sessions (empty: no end)", { name: "count", type: "number", min: 1, max: 520, value: weekly?.count ?? "" });
  const problem = alertBox();
  const save = h("button", { type: "submit", class: "primary" }, "Set schedule");
  const form = h("form", { class: "schedule-form", "aria-label": `Schedule of ${room.title}` },
    h("h3", {}, "Schedule"), problem, start.wrap, duration.wrap, zone.wrap, repeat.wrap, days, count.wrap,
    h("div", { class: "row" }, save, room.schedule ? button("Remove schedule", async () => {
      try {
        await api.clearSchedule(room.id);
        changed();
      } catch (err) {
        problem.show(describe(err));
      }
    }) : null));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    problem.clear();
    const when = start.input.value;
    if (!when) return problem.show("Choose the date and time of the first session.");
    const first = new Date(when);
    const firstDay = DAYS[(first.getDay() + 6) % 7].code;
    const chosen = new Set(dayBoxes.filter((d) => d.input.checked).map((d) => d.code));
    chosen.add(firstDay);
    const n = count.input.value ? Number(count.input.value) : undefined;
    const schedule: Schedule = {
      timeZone: zone.input.value.trim(),
      // The form edits the first series; others (set through the API) are kept.
      entries: [{
        start: `${when}:00`.slice(0, 19),
        durationMinutes: Number(duration.input.value),
        recurrence: repeat.input.checked
          ? { kind: "weekly", weekdays: DAYS.map((d) => d.code).filter((c) => chosen.has(c)), ...(n ? { count: n } : {}) }
          : { kind: "none" },
      }, ...(room.schedule?.entries.slice(1) ?? [])],
    };
    save.disabled = true;
    try {
      await api.setSchedule(room.id, schedule);
      changed();
    } catch (err) {
      problem.show(describe(err));
    } finally {
      save.disabled = false;
    }
  });
  return h("div", { class: "schedule" }, form, calendarLinkSection(api, room));
}

/** The room's calendar subscribe link (for calendar apps), with copy and revoke. */
export function calendarLinkSection(api: Api, room: Room): HTMLElement {
  const problem = alertBox();
  const id = `cal-${Math.random().toString(36).slice(2, 8)}`;
  const out = h("input", { id, readonly: true, class: "calendar-url", value: "" });
  const copy = button("Copy link", async () => {
    try {
      await navigator.clipboard.writeText(out.value);
      problem.show("Copied. Add it to your calendar app as a subscription (\"From URL\").", "info");
    } catch {
      out.select();
      problem.show("Select the link and copy it.", "info");
    }
  }, { disabled: true });
  const show = button("Show calendar link", async () => {
    problem.clear();
    try {
      const link = await api.calendarLink(room.id);
      out.value = location.origin + link.url;
      copy.disabled = false;
    } catch (err) {
      problem.show(describe(err));
    }
  });
  const revoke = button("Revoke link", async () => {
    if (!confirm("Revoke this calendar link? Calendars subscribed to it stop updating.")) return;
    try {
      await api.revokeCalendarLink(room.id);
      out.value = "";
      copy.disabled = true;
      problem.show("Revoked. A new link is made the next time you ask for one.", "info");
    } catch (err) {
      problem.show(describe(err));
    }
  });
  return h("section", { class: "calendar-link", "aria-label": `Calendar link of ${room.title}` },
    h("h3", {}, "Calendar (.ics)"), problem,
    h("div", { class: "field" }, h("label", { for: id }, "Subscribe link (keep it private)"), out),
    h("div", { class: "row" }, show, copy, revoke));
}
