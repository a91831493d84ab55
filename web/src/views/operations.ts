// The operator's page (admins, /admin/operations; issue 20): the nodes, the
// live rooms with each participant's bitrate, loss and health, recordings in
// progress, the export queue, disk space, the certificate and the latest
// audit events. One request (GET /operations) every POLL_MS while the page
// is shown; stopped when the page is left.
import type { Api } from "../api";
import { alertBox, formatTime, h, replace } from "../dom";
import { describe } from "../errors";

/** How often the page asks again. */
export const POLL_MS = 5_000;

type Health = "good" | "fair" | "poor" | "reconnecting" | "unknown";

interface Participant {
  peerId: string;
  displayName: string;
  role: string;
  bitrateIn: number;
  bitrateOut: number;
  loss: number;
  score: number | null;
  health: Health;
}

interface Room {
  roomId: string;
  title: string;
  recordingId: string | null;
  mediaStats: boolean;
  participants: Participant[];
}

interface Node {
  kind: "api" | "sfu";
  name: string;
  up: boolean;
  cpuPercent: number | null;
  residentMemoryBytes: number | null;
  openFds: number | null;
  workerTransports: number[];
  rooms: number | null;
  peers: number | null;
}

interface Operations {
  generatedAt: string;
  nodes: Node[];
  rooms: Room[];
  recordings: { recordingId: string; roomId: string; title: string; seconds: number; bytesWritten: number }[];
  exports: { queued: number; running: number; failed: number };
  disk: { freeBytes: number; sizeBytes: number } | null;
  certificate: { notAfter: string } | null;
  audit: { id: string; at: string; event: string; actor: string | null; target: string | null }[];
}

/** 1 234 567 → "1.2 MB". */
export function bytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/** Bits per second → "1.2 Mbit/s". */
export function bitrate(bps: number): string {
  if (bps >= 1_000_000) return `${(bps / 1_000_000).toFixed(1)} Mbit/s`;
  if (bps >= 1_000) return `${Math.round(bps / 1_000)} kbit/s`;
  return `${bps} bit/s`;
}

const HEALTH_TEXT: Record<Health, string> = { good: "Good", fair: "Fair", poor: "Poor", reconnecting: "Reconnecting", unknown: "No media yet" };

function table(caption: string, columns: string[], rows: HTMLElement[], empty: string): HTMLElement {
  // Focusable and named: at phone width the table scrolls sideways, by keyboard too.
  return h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption },
    h("table", { class: "ops" },
      // The section's heading already says it: for screen readers only.
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty))]))));
}

function nodesSection(nodes: Node[]): HTMLElement {
  return table("Nodes", ["Node", "State", "CPU", "Memory", "Rooms · peers", "Transports per worker"], nodes.map((n) =>
    h("tr", {},
      h("th", { scope: "row" }, n.kind === "sfu" ? `SFU: ${n.name}` : n.name),
      h("td", {}, h("span", { class: `health ${n.up ? "good" : "poor"}` }, n.up ? "Up" : "Down")),
      h("td", {}, n.cpuPercent == null ? "–" : `${n.cpuPercent.toFixed(0)} %`),
      h("td", {}, n.residentMemoryBytes == null ? "–" : bytes(n.residentMemoryBytes)),
      h("td", {}, n.rooms == null ? "–" : `${n.rooms} · ${n.peers ?? 0}`),
      h("td", {}, n.workerTransports.length ? n.workerTransports.join(" · ") : "–"))), "No nodes.");
}

function roomSection(room: Room): HTMLElement {
  const rows = room.participants.map((p) =>
    h("tr", { "data-peer-id": p.peerId },
      h("th", { scope: "row" }, p.displayName, h("span", { class: "muted" }, ` ${p.role}`)),
      h("td", { class: "bitrate-in" }, bitrate(p.bitrateIn)),
      h("td", { class: "bitrate-out" }, bitrate(p.bitrateOut)),
      h("td", {}, `${(p.loss * 100).toFixed(1)} %`),
      h("td", {}, h("span", { class: `health ${p.health}` }, HEALTH_TEXT[p.health], p.score == null ? "" : ` (${p.score}/10)`))));
  return h("article", { class: "ops-room", "data-room-id": room.roomId },
    h("h3", {}, room.title, room.recordingId ? h("span", { class: "badge" }, "Recording") : null,
      room.mediaStats ? null : h("span", { class: "badge" }, "No media figures")),
    table(`Participants of ${room.title}`, ["Participant", "Sends", "Receives", "Loss", "Health"], rows, "Nobody here."));
}

function render(ops: Operations): HTMLElement[] {
  const diskText = ops.disk
    ? `${bytes(ops.disk.freeBytes)} free of ${bytes(ops.disk.sizeBytes)} (${((ops.disk.freeBytes / Math.max(1, ops.disk.sizeBytes)) * 100).toFixed(0)} %)`
    : "unknown";
  const certText = ops.certificate
    ? `${formatTime(ops.certificate.notAfter)} (${Math.floor((Date.parse(ops.certificate.notAfter) - Date.now()) / 86_400_000)} days)`
    : "not served by VTP (HTTPS off, or a proxy holds it)";
  return [
    h("section", {},
      h("h2", { id: "ops-node-heading" }, "Nodes"),
      nodesSection(ops.nodes),
      h("dl", { class: "ops-facts" },
        h("dt", {}, "Disk (data directory)"), h("dd", { class: "disk" }, diskText),
        h("dt", {}, "Certificate expires"), h("dd", {}, certText),
        h("dt", {}, "Export queue"), h("dd", { class: "exports" }, `${ops.exports.queued} queued · ${ops.exports.running} running · ${ops.exports.failed} failed`))),
    h("section", {},
      h("h2", { id: "ops-rooms-heading" }, `Live rooms (${ops.rooms.length})`),
      ...(ops.rooms.length ? ops.rooms.map(roomSection) : [h("p", { class: "muted" }, "No live rooms.")])),
    h("section", {},
      h("h2", { id: "ops-rec-heading" }, "Recordings in progress"),
      table("Recordings in progress", ["Room", "Running for", "Written"], ops.recordings.map((r) =>
        h("tr", { "data-recording-id": r.recordingId },
          h("th", { scope: "row" }, r.title),
          h("td", {}, `${Math.floor(r.seconds / 60)} min ${r.seconds % 60} s`),
          h("td", { class: "written" }, bytes(r.bytesWritten)))), "Nothing is being recorded.")),
    h("section", {},
      h("h2", { id: "ops-audit-heading" }, "Recent audit events"),
      table("Recent audit events", ["When", "Event", "Who", "Target"], ops.audit.map((e) =>
        h("tr", {}, h("td", {}, formatTime(e.at)), h("td", {}, h("code", {}, e.event)), h("td", {}, e.actor ?? ""), h("td", {}, e.target ?? ""))), "No audit events yet.")),
  ];
}

export function operationsView(api: Api): { el: HTMLElement; stop: () => void } {
  const problem = alertBox();
  const updated = h("p", { class: "muted updated" }, "Loading…");
  const content = h("div", { class: "ops-content" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const load = async () => {
    try {
      const ops = await api.call<Operations>("GET", "/operations");
      if (stopped) return;
      problem.clear();
      replace(content, ...render(ops));
      updated.textContent = `Updated ${formatTime(ops.generatedAt)}; refreshes every ${POLL_MS / 1000} s.`;
    } catch (err) {
      if (!stopped) problem.show(describe(err));
    } finally {
      if (!stopped) timer = setTimeout(() => void load(), POLL_MS);
    }
  };
  void load();
  const el = h("main", { id: "main", class: "page operations" },
    h("h1", {}, "Operations"),
    updated,
    problem,
    content);
  return { el, stop: () => { stopped = true; clearTimeout(timer); } };
}
