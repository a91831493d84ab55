// The room's side panels: chat (with the session's history) and the
// participants list with raised hands, roles and the host's controls.
import { alertBox, button, formatTime, h, replace } from "../dom";
import { describe } from "../errors";
import type { RoomSession, PeerState } from "./session";

const ROLE_LABEL = { host: "Host", presenter: "Presenter", participant: "Participant" } as const;

/** How long a refused message's explanation stays (the next message sent clears it too). */
const CHAT_PROBLEM_MS = 6000;

/** A web address in a message: http(s), up to white space; trailing punctuation is the sentence's. */
const LINK = /https?:\/\/[^\s<>"]+/g;

/**
 * A message's text with its web addresses as links (opened in a new tab,
 * without telling the page who opened it). Only http(s) addresses become
 * links, and the text is never parsed as HTML.
 */
export function linkify(text: string): (string | HTMLAnchorElement)[] {
  const out: (string | HTMLAnchorElement)[] = [];
  let last = 0;
  for (const m of text.matchAll(LINK)) {
    const url = m[0].replace(/[.,;:!?)\]]+$/, "");
    const start = m.index ?? 0;
    if (start > last) out.push(text.slice(last, start));
    out.push(h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, url));
    last = start + url.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

export function chatPanel(session: RoomSession): { el: HTMLElement; render(): void; unread: () => number; seen(): void } {
  const list = h("ol", { class: "chat-list", "aria-label": "Messages", tabindex: 0 });
  const input = h("input", { name: "chat", type: "text", maxlength: 2000, autocomplete: "off", placeholder: "Write a message", "aria-label": "Message" });
  const problem = alertBox();
  const form = h("form", { class: "chat-form" }, input, h("button", { type: "submit" }, "Send"));
  let seenCount = 0;
  let problemTimer: ReturnType<typeof setTimeout> | undefined;
  /** Says why a message was refused without hiding the newest messages, and for a while only. */
  const showProblem = (text: string) => {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    problem.show(text);
    if (atBottom) list.scrollTop = list.scrollHeight; // the alert took room from the list
    clearTimeout(problemTimer);
    problemTimer = setTimeout(() => problem.clear(), CHAT_PROBLEM_MS);
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    try {
      await session.sendChat(text);
      input.value = "";
      clearTimeout(problemTimer);
      problem.clear();
    } catch (err) {
      showProblem(describe(err));
    }
  });
  const render = () => {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    replace(
      list,
      ...session.chat.map((m) =>
        h(
          "li",
          { class: m.peerId === session.selfId ? "chat-msg mine" : "chat-msg" },
          h("span", { class: "chat-who" }, m.peerId === session.selfId ? "You" : m.displayName),
          h("time", { class: "chat-time", datetime: m.sentAt }, formatTime(m.sentAt)),
          h("p", { class: "chat-text" }, ...linkify(m.text)),
        ),
      ),
    );
    if (session.chat.length === 0) list.append(h("li", { class: "muted" }, "No messages yet."));
    if (atBottom) list.scrollTop = list.scrollHeight;
    announce();
  };
  // Screen readers hear new messages from others without the whole list being re-read.
  const announcer = h("p", { class: "visually-hidden", "aria-live": "polite" });
  let announced = -1; // the history shown at join is not news
  const announce = () => {
    if (announced < 0) {
      if (session.joins > 0) announced = session.chat.length;
      return;
    }
    for (const m of session.chat.slice(announced)) {
      if (m.peerId !== session.selfId) announcer.textContent = `${m.displayName} says: ${m.text}`;
    }
    announced = session.chat.length;
  };
  const el = h("section", { class: "panel chat", "aria-label": "Chat" }, h("h2", {}, "Chat"), list, announcer, problem, form);
  return {
    el,
    render,
    unread: () => Math.max(0, session.chat.length - seenCount),
    seen: () => {
      seenCount = session.chat.length;
    },
  };
}

export function peoplePanel(session: RoomSession, you: string): { el: HTMLElement; render(): void } {
  const list = h("ul", { class: "people-list" });
  const problem = alertBox();
  const spotlight = (peer: PeerState) => async () => {
    problem.clear();
    try {
      await session.setSpotlight(session.spotlight?.peerId === peer.peerId ? null : peer.peerId);
    } catch (err) {
      problem.show(describe(err));
    }
  };
  const act = (action: "mute" | "remove" | "promote" | "demote", peer: PeerState) => async () => {
    if (action === "remove" && !confirm(`Remove ${peer.displayName} from this session?`)) return;
    problem.clear();
    try {
      await session.hostAction(action, peer.peerId);
    } catch (err) {
      problem.show(describe(err));
    }
  };
  // Only ever a request: the student answers on their page (hosttools.ts).
  const ask = (peer: PeerState) => async () => {
    problem.clear();
    try {
      await session.sig.request("ask-to-unmute", { roomId: session.room.id, peerId: peer.peerId });
    } catch (err) {
      problem.show(describe(err));
    }
  };
  const row = (peer: PeerState, self: boolean) => {
    const micOn = peer.producers.some((p) => p.kind === "audio" && !p.paused);
    const controls: HTMLElement[] = [];
    if (session.isHost) {
      // Spotlight: this person large on everyone's page (a viewer's own pin still wins there).
      const lit = session.spotlight?.peerId === peer.peerId;
      controls.push(
        button(lit ? "Remove spotlight" : "Spotlight", spotlight(peer), {
          class: "small",
          "aria-label": lit ? `Remove the spotlight from ${peer.displayName}` : `Spotlight ${peer.displayName} for everyone`,
        }),
      );
    }
    if (session.isHost && !self) {
      if (micOn) controls.push(button("Mute", act("mute", peer), { class: "small", "aria-label": `Mute ${peer.displayName}` }));
      else if (peer.role !== "host") controls.push(button("Ask to unmute", ask(peer), { class: "small", "aria-label": `Ask to unmute: ${peer.displayName}` }));
      if (peer.role !== "host") {
        controls.push(
          peer.role === "presenter"
            ? button("Demote", act("demote", peer), { class: "small", "aria-label": `Demote: make ${peer.displayName} a participant` })
            : button("Promote", act("promote", peer), { class: "small", "aria-label": `Promote: make ${peer.displayName} a presenter` }),
          button("Remove", act("remove", peer), { class: "small danger", "aria-label": `Remove ${peer.displayName}` }),
        );
      }
    }
    return h(
      "li",
      { class: "person", "data-peer-id": peer.peerId },
      h(
        "div",
        { class: "person-info" },
        h("span", { class: "person-name" }, self ? `${peer.displayName} (you)` : peer.displayName),
        h("span", { class: `role role-${peer.role}` }, ROLE_LABEL[peer.role]),
        peer.handRaised ? h("span", { class: "hand" }, "Hand raised") : null,
        session.spotlight?.peerId === peer.peerId ? h("span", { class: "role" }, "In the spotlight") : null,
        micOn ? null : h("span", { class: "muted-badge", title: "Microphone off" }, "Mic off"),
      ),
      controls.length ? h("div", { class: "person-actions" }, ...controls) : null,
    );
  };
  const render = () => {
    const me: PeerState = {
      peerId: session.selfId,
      userId: "",
      displayName: you,
      role: session.role,
      handRaised: session.handRaised,
      producers: [...session.media.producers].map(([source, p]) => ({
        producerId: p.id,
        peerId: session.selfId,
        kind: p.kind as "audio" | "video",
        paused: p.paused,
        appData: { source },
      })),
    };
    // Raised hands first, then by name: a host scans for hands.
    const others = [...session.peers.values()].sort(
      (a, b) => Number(b.handRaised) - Number(a.handRaised) || a.displayName.localeCompare(b.displayName),
    );
    replace(list, row(me, true), ...others.map((p) => row(p, false)));
  };
  // Hosts: who waits to be let in (the waiting room), with Admit / Deny and Admit all.
  const waitingHeading = h("h3", {}, "Waiting");
  const waitingList = h("ul", { class: "waiting-list", "aria-label": "Waiting to be let in" });
  const decide = (what: () => Promise<void>) => async () => {
    problem.clear();
    try {
      await what();
    } catch (err) {
      problem.show(describe(err));
    }
  };
  const admitAll = button("Admit all", decide(() => session.admit()), { class: "small" });
  const waitingBox = h("div", { class: "waiting", hidden: true }, h("div", { class: "row" }, waitingHeading, admitAll), waitingList);
  const renderWaiting = () => {
    const people = session.isHost ? session.waiting : [];
    waitingBox.hidden = people.length === 0;
    waitingHeading.textContent = `Waiting (${people.length})`;
    replace(
      waitingList,
      ...people.map((w) =>
        h(
          "li",
          { class: "person", "data-waiting-id": w.waitingId },
          h("div", { class: "person-info" }, h("span", { class: "person-name" }, w.displayName), h("span", { class: "muted" }, `since ${formatTime(w.since)}`)),
          h(
            "div",
            { class: "person-actions" },
            button("Admit", decide(() => session.admit(w.waitingId)), { class: "small", "aria-label": `Admit ${w.displayName}` }),
            button("Deny", decide(() => session.deny(w.waitingId)), { class: "small danger", "aria-label": `Deny ${w.displayName}` }),
          ),
        ),
      ),
    );
  };
  const el = h("section", { class: "panel people", "aria-label": "Participants" }, h("h2", { tabindex: -1 }, "Participants"), problem, waitingBox, list);
  return {
    el,
    render: () => {
      renderWaiting();
      render();
    },
  };
}
