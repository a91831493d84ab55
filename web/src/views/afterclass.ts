// After class: a room's past sessions (`/rooms/<id>/sessions`) and one
// session (`/rooms/<id>/sessions/<sessionId>`) with its recordings played in
// the page, the chat shown in step with the playback, and the attendance.
//
// Media plays from short-lived signed links (`POST /recordings/{id}/links`):
// a `<video src>` cannot send the Authorization header. What a user sees is
// what the API lets them see: hosts get sessions and attendance, everyone
// the recordings and chat of the sessions they may read.
import { ApiError, type Api, type Room } from "../api";
import { alertBox, button, h, replace } from "../dom";
import { describe } from "../errors";

interface Session {
  id: string;
  startedAt: string;
  endedAt: string | null;
  participantCount: number;
}
interface Recording {
  id: string;
  sessionId: string;
  startedAt: string;
  stoppedAt: string | null;
  state: "recording" | "finalizing" | "ready" | "failed";
  bytes: number;
  durationMs: number;
}
interface ManifestTrack {
  file: string;
  kind: "audio" | "video";
  startOffsetMs?: number;
}
interface FileLink {
  name: string;
  kind: "audio" | "video" | null;
  contentType: string;
  url: string;
}
interface Links {
  expiresAt: string;
  files: FileLink[];
  exports: { id: string; layout: string; url: string }[];
}
interface Export {
  id: string;
  layout: string;
  state: "queued" | "running" | "ready" | "failed";
  progress: number;
  error: string | null;
}
interface ChatLine {
  id: string;
  displayName: string;
  text: string;
  sentAt: string;
}
interface Attendee {
  displayName: string;
  role: string;
  firstJoinedAt: string;
  lastLeftAt: string | null;
  totalMinutes: number;
  visits: number;
}
interface Cursor<T> {
  items: T[];
  nextCursor?: string | null;
}

/** Most chat messages loaded for one session (200 a page). */
const MAX_CHAT = 2000;
/** How often a running export's progress is asked for. */
const EXPORT_POLL_MS = 1000;
/** Tracks further apart than this (s) are pulled back in step. */
const DRIFT_S = 0.3;

const enc = encodeURIComponent;
const when = (iso: string) => new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
const clock = (s: number) => {
  const t = Math.max(0, Math.floor(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, "0")}`;
};

function isHost(api: Api, room: Room): boolean {
  return api.user!.role === "admin" || room.ownerId === api.user!.id;
}

async function recordingsOf(api: Api, roomId: string): Promise<Recording[]> {
  return (await api.call<Cursor<Recording>>("GET", `/recordings?roomId=${enc(roomId)}&limit=100`)).items;
}

/** `/recordings`: every room's after-class page. */
export function afterClassIndex(api: Api): HTMLElement {
  const problem = alertBox();
  const list = h("ul", { class: "sessions", "aria-label": "Rooms" }, h("li", { class: "muted" }, "Loading rooms…"));
  void api
    .rooms()
    .then((page) => {
      if (page.items.length === 0) replace(list, h("li", { class: "muted" }, "No rooms yet."));
      else replace(list, ...page.items.map((r) => h("li", {}, h("a", { href: `/rooms/${enc(r.id)}/sessions`, "data-link": true }, r.title))));
    })
    .catch((err) => {
      replace(list);
      problem.show(describe(err));
    });
  return h("main", { id: "main", class: "page afterclass" }, h("h1", {}, "After class"), h("p", {}, "Recordings, chat and attendance of past classes, by room."), problem, list);
}

/** `/rooms/<id>/sessions`: the room's sessions with their recordings. */
export function sessionsView(api: Api, roomId: string): HTMLElement {
  const problem = alertBox();
  const list = h("ul", { class: "sessions", "aria-label": "Sessions" }, h("li", { class: "muted" }, "Loading sessions…"));
  const title = h("h1", {}, "After class");
  void (async () => {
    try {
      const room = await api.room(roomId);
      title.textContent = `After class: ${room.title}`;
      const recordings = await recordingsOf(api, roomId);
      let sessions: Session[];
      if (isHost(api, room)) {
        sessions = (await api.call<Cursor<Session>>("GET", `/rooms/${enc(roomId)}/sessions?limit=100`)).items;
      } else {
        // Not a host: the sessions whose recordings the API shows.
        const seen = new Map<string, Session>();
        for (const r of recordings) seen.set(r.sessionId, seen.get(r.sessionId) ?? { id: r.sessionId, startedAt: r.startedAt, endedAt: r.stoppedAt, participantCount: 0 });
        sessions = [...seen.values()];
      }
      if (sessions.length === 0) {
        replace(list, h("li", { class: "muted" }, "No sessions yet: they appear here after the first class."));
        return;
      }
      replace(
        list,
        ...sessions.map((s) => {
          const count = recordings.filter((r) => r.sessionId === s.id).length;
          const facts = [
            s.endedAt ? `ended ${new Date(s.endedAt).toLocaleTimeString([], { timeStyle: "short" })}` : "running now",
            s.participantCount ? `${s.participantCount} ${s.participantCount === 1 ? "person" : "people"}` : "",
            `${count} ${count === 1 ? "recording" : "recordings"}`,
          ].filter(Boolean);
          return h(
            "li",
            { class: "session-item", "data-session-id": s.id },
            h("a", { href: `/rooms/${enc(roomId)}/sessions/${enc(s.id)}`, "data-link": true }, `Class of ${when(s.startedAt)}`),
            h("span", { class: "muted" }, ` · ${facts.join(" · ")}`),
          );
        }),
      );
    } catch (err) {
      replace(list);
      problem.show(describe(err));
    }
  })();
  return h(
    "main",
    { id: "main", class: "page afterclass" },
    h("p", {}, h("a", { href: "/", "data-link": true }, "← Rooms")),
    title,
    problem,
    h("section", { "aria-label": "Past sessions" }, h("h2", {}, "Sessions"), list),
  );
}

/** Keeps `others` playing in step with `main` (their offsets in seconds). */
function syncTracks(main: HTMLMediaElement, others: { el: HTMLMediaElement; offset: number }[], mainOffset: number): void {
  const follow = () => {
    for (const o of others) {
      const want = main.currentTime + mainOffset - o.offset;
      o.el.playbackRate = main.playbackRate;
      if (want < 0 || (Number.isFinite(o.el.duration) && want > o.el.duration)) {
        o.el.pause();
        continue;
      }
      if (Math.abs(o.el.currentTime - want) > DRIFT_S) o.el.currentTime = want;
      if (main.paused !== o.el.paused) void (main.paused ? o.el.pause() : o.el.play().catch(() => {}));
    }
  };
  for (const ev of ["play", "pause", "seeked", "ratechange", "timeupdate"]) main.addEventListener(ev, follow);
}

/** `/rooms/<id>/sessions/<sid>`: recordings, chat and attendance of one session. */
export function sessionView(api: Api, roomId: string, sessionId: string): { el: HTMLElement; stop(): void } {
  const problem = alertBox();
  const title = h("h1", {}, "Class");
  const library = h("div", { class: "library" }, h("p", { class: "muted" }, "Loading recordings…"));
  const chat = h("ol", { class: "transcript", "aria-label": "Chat transcript" });
  const chatSection = h("section", { class: "card", "aria-labelledby": "chat-h" }, h("h2", { id: "chat-h" }, "Chat"), chat);
  const attendanceSection = h("section", { class: "card", "aria-labelledby": "att-h", hidden: true }, h("h2", { id: "att-h" }, "Attendance"));
  const timers: number[] = [];
  let lines: (ChatLine & { el: HTMLElement })[] = [];
  let current: HTMLElement | null = null;

  /** Marks the last message sent by `at` (epoch ms) in the playback. */
  const follow = (at: number) => {
    let hit: HTMLElement | null = null;
    for (const l of lines) if (Date.parse(l.sentAt) <= at) hit = l.el;
    if (hit === current) return;
    current?.removeAttribute("aria-current");
    current?.classList.remove("now");
    current = hit;
    if (hit) {
      hit.classList.add("now");
      hit.setAttribute("aria-current", "time");
      hit.scrollIntoView({ block: "nearest" });
    }
  };

  const download = (name: string, text: string, type: string) => {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = h("a", { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    // Revoked later: the download must have started first.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  };

  const loadChat = async () => {
    const all: ChatLine[] = [];
    let cursor: string | null | undefined;
    do {
      const page = await api.call<Cursor<ChatLine>>("GET", `/rooms/${enc(roomId)}/chat?sessionId=${enc(sessionId)}&limit=200${cursor ? `&cursor=${enc(cursor)}` : ""}`);
      all.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor && all.length < MAX_CHAT);
    all.reverse(); // oldest first
    lines = all.map((m) => ({
      ...m,
      el: h("li", { "data-sent-at": m.sentAt }, h("time", { datetime: m.sentAt }, new Date(m.sentAt).toLocaleTimeString()), " ", h("strong", {}, m.displayName), ": ", m.text),
    }));
    if (lines.length === 0) replace(chat, h("li", { class: "muted" }, "Nobody wrote in the chat."));
    else replace(chat, ...lines.map((l) => l.el));
    const text = all.map((m) => `[${new Date(m.sentAt).toISOString()}] ${m.displayName}: ${m.text}`).join("\n");
    chatSection.append(button("Download chat", () => download(`chat-${sessionId}.txt`, `${text}\n`, "text/plain"), { class: "download-chat" }));
  };

  const loadAttendance = async () => {
    const report = await api.call<{ attendees: Attendee[] }>("GET", `/rooms/${enc(roomId)}/sessions/${enc(sessionId)}/attendance`);
    const table = h(
      "table",
      { class: "attendance" },
      h("caption", { class: "visually-hidden" }, "Who attended, when, for how long"),
      h("thead", {}, h("tr", {}, ...["Name", "Role", "First joined", "Last left", "Minutes", "Visits"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        ...report.attendees.map((a) =>
          h("tr", {}, h("td", {}, a.displayName), h("td", {}, a.role), h("td", {}, new Date(a.firstJoinedAt).toLocaleTimeString()), h("td", {}, a.lastLeftAt ? new Date(a.lastLeftAt).toLocaleTimeString() : "still here"), h("td", {}, String(a.totalMinutes)), h("td", {}, String(a.visits))),
        ),
      ),
    );
    const csv = button("Download attendance (CSV)", async () => {
      try {
        const text = await csvText(api, `/rooms/${enc(roomId)}/sessions/${enc(sessionId)}/attendance?format=csv`);
        download(`attendance-${sessionId}.csv`, text, "text/csv");
      } catch (err) {
        problem.show(describe(err));
      }
    }, { class: "download-attendance" });
    attendanceSection.append(h("div", { class: "table-wrap" }, table), csv);
    attendanceSection.hidden = false;
  };

  /** One recording: player, speed, downloads, export, delete. */
  const recordingCard = async (rec: Recording, host: boolean, index: number): Promise<HTMLElement> => {
    const heading = `Recording ${index + 1}, ${new Date(rec.startedAt).toLocaleTimeString([], { timeStyle: "short" })} (${clock(rec.durationMs / 1000)})`;
    const card = h("article", { class: "recording card", "data-recording-id": rec.id, "aria-label": heading }, h("h3", {}, heading));
    if (rec.state !== "ready") {
      card.append(h("p", { class: "muted" }, rec.state === "failed" ? "This recording failed: there is nothing to play." : `This recording is ${rec.state}: it can be played once it is ready.`));
      return card;
    }
    const links = await api.call<Links>("POST", `/recordings/${rec.id}/links`);
    const details = await api.call<{ manifest: { tracks?: ManifestTrack[] } | null }>("GET", `/recordings/${rec.id}`);
    const offsets = new Map((details.manifest?.tracks ?? []).map((t) => [t.file, (t.startOffsetMs ?? 0) / 1000]));
    const stage = h("div", { class: "player" });
    const composed = links.exports.find((e) => e.layout !== "audio");
    const videos = links.files.filter((f) => f.kind === "video");
    const audios = links.files.filter((f) => f.kind === "audio");
    let main: HTMLMediaElement;
    let mainOffset = 0;
    if (composed) {
      main = h("video", { src: composed.url, controls: true, preload: "metadata", playsinline: true, "aria-label": "Recording (composed)" });
      stage.append(main);
    } else {
      const first = videos[0] ?? audios[0];
      if (!first) {
        card.append(h("p", { class: "muted" }, "This recording has no tracks."));
        return card;
      }
      mainOffset = offsets.get(first.name) ?? 0;
      main = h(first.kind === "video" ? "video" : "audio", { src: first.url, controls: true, preload: "metadata", playsinline: true, "aria-label": "Recording" });
      const others = [...videos, ...audios]
        .filter((f) => f !== first)
        .map((f) => {
          const el = h(f.kind === "video" ? "video" : "audio", { src: f.url, preload: "metadata", playsinline: true, "aria-label": `Track ${f.name}` });
          if (f.kind === "video") el.classList.add("side");
          else el.hidden = true;
          return { el: el as HTMLMediaElement, offset: offsets.get(f.name) ?? 0 };
        });
      stage.append(main, ...others.filter((o) => o.el instanceof HTMLVideoElement).map((o) => o.el), ...others.filter((o) => !(o.el instanceof HTMLVideoElement)).map((o) => o.el));
      syncTracks(main, others, mainOffset);
    }
    main.classList.add("main-track");
    const startMs = Date.parse(rec.startedAt);
    main.addEventListener("timeupdate", () => follow(startMs + (main.currentTime + mainOffset) * 1000));
    main.addEventListener("error", () => problem.show("The recording cannot be played here: its link may have expired. Reload the page to get a new one, or download the file."));

    const speed = h("select", { "aria-label": "Playback speed", class: "speed" }, ...[0.75, 1, 1.25, 1.5, 2].map((r) => h("option", { value: r, selected: r === 1 }, `${r}×`)));
    speed.addEventListener("change", () => {
      main.playbackRate = Number(speed.value);
    });
    const downloads = h(
      "ul",
      { class: "downloads", "aria-label": "Downloads" },
      ...links.exports.map((e) => h("li", {}, h("a", { href: e.url, download: "" }, `MP4 (${e.layout})`))),
      ...links.files.filter((f) => f.kind).map((f) => h("li", {}, h("a", { href: f.url, download: f.name }, `${f.kind === "video" ? "Video" : "Audio"}: ${f.name}`))),
    );
    const cardProblem = alertBox();
    const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Export progress" });
    const exportButton = button(composed ? "Export again" : "Export to MP4", async () => {
      cardProblem.clear();
      exportButton.disabled = true;
      try {
        const started = await api.call<Export>("POST", `/recordings/${rec.id}/exports`, { layout: "speaker" });
        progress.hidden = false;
        const poll = async () => {
          try {
            const e = await api.call<Export>("GET", `/recordings/${rec.id}/exports/${started.id}`);
            progress.value = e.progress;
            if (e.state === "ready") {
              // The new card replaces this one whole: its Delete button removes itself, so it must be the one on the page.
              card.replaceWith(await recordingCard(rec, host, index));
            } else if (e.state === "failed") {
              cardProblem.show(`The export failed: ${e.error ?? "no reason given"}.`);
              exportButton.disabled = false;
            } else timers.push(window.setTimeout(() => void poll(), EXPORT_POLL_MS));
          } catch (err) {
            cardProblem.show(describe(err));
            exportButton.disabled = false;
          }
        };
        void poll();
      } catch (err) {
        cardProblem.show(describe(err));
        exportButton.disabled = false;
      }
    });
    const actions = h("div", { class: "row" }, h("label", {}, "Speed ", speed), exportButton, progress);
    if (host) {
      actions.append(
        button("Delete recording", async () => {
          if (!confirm("Delete this recording and its exports for everyone? This cannot be undone.")) return;
          try {
            await api.call("DELETE", `/recordings/${rec.id}`);
            card.remove();
          } catch (err) {
            cardProblem.show(describe(err));
          }
        }, { class: "danger" }),
      );
    }
    card.append(cardProblem, stage, actions, downloads);
    return card;
  };

  void (async () => {
    try {
      const room = await api.room(roomId);
      const host = isHost(api, room);
      title.textContent = `${room.title}: class`;
      const recordings = (await recordingsOf(api, roomId)).filter((r) => r.sessionId === sessionId).reverse();
      const chatLoad = loadChat().catch((err) => replace(chat, h("li", { class: "muted" }, err instanceof ApiError && err.status === 403 ? "Only those who attended this class can read its chat." : describe(err))));
      const attendanceLoad = host ? loadAttendance().catch((err) => problem.show(describe(err))) : Promise.resolve();
      if (recordings.length === 0) replace(library, h("p", { class: "muted" }, "This class was not recorded (or you may not see its recordings)."));
      else replace(library, ...(await Promise.all(recordings.map((r, i) => recordingCard(r, host, i)))));
      await Promise.all([chatLoad, attendanceLoad]);
    } catch (err) {
      replace(library);
      problem.show(describe(err));
    }
  })();

  const el = h(
    "main",
    { id: "main", class: "page afterclass" },
    h("p", {}, h("a", { href: `/rooms/${enc(roomId)}/sessions`, "data-link": true }, "← All sessions")),
    title,
    problem,
    h("section", { "aria-labelledby": "rec-h" }, h("h2", { id: "rec-h" }, "Recordings"), library),
    h("div", { class: "afterclass-side" }, chatSection, attendanceSection),
  );
  return { el, stop: () => timers.forEach((t) => clearTimeout(t)) };
}

/** A CSV answer of the API as text (the JSON client would not parse it). */
async function csvText(api: Api, path: string): Promise<string> {
  const res = await fetch(`/api/v1${path}`, { headers: { authorization: `Bearer ${await api.token()}` } });
  if (!res.ok) throw new ApiError(res.status, "internal", "The attendance could not be downloaded. Try again.");
  return res.text();
}
