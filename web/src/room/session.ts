// One person's presence in a live room: joins, keeps the list of peers, chat
// and hands in step with the server's notifications, and rejoins after the
// socket comes back. It knows nothing of the DOM: the view listens to
// `onChange` and reads the state.
import type { types } from "mediasoup-client";
import type { Api, Room } from "../api";
import { Media, type ProducerInfo } from "../media";
import { SignalError } from "../errors";
import { Signalling, type ConnectionState } from "../session";

/** How often a student waiting for the class to start asks again. */
const WAIT_FOR_HOST_MS = 3000;

export type RoomRole = "host" | "presenter" | "participant";

export interface PeerState {
  peerId: string;
  userId: string;
  displayName: string;
  role: RoomRole;
  handRaised: boolean;
  producers: ProducerInfo[];
}

export interface ChatMessage {
  id: string;
  peerId: string;
  displayName: string;
  text: string;
  sentAt: string;
}

interface JoinData {
  roomId: string;
  title: string;
  peerId: string;
  role: RoomRole;
  routerRtpCapabilities: types.RtpCapabilities;
  peers: PeerState[];
  chat: ChatMessage[];
  resumed: boolean;
  /** The room is being recorded. */
  recording: boolean;
  /** Who speaks now, when someone has since the session began. */
  activeSpeaker?: { peerId: string };
  /** Whom a host put in the spotlight. */
  spotlight?: Spotlight;
}

/** `join-room`'s answer to someone the waiting room keeps out. */
interface WaitingAnswer {
  roomId: string;
  waiting: true;
  waitingId: string;
  status: WaitStatus;
}

/** What a waiting person waits for: a host to come, or a host to let them in. */
export type WaitStatus = "not_started" | "waiting_for_host";

/** Someone waiting to be let in, as hosts see them (`waiting-changed`). */
export interface WaitingPerson {
  waitingId: string;
  userId: string;
  displayName: string;
  since: string;
}

/** A host's spotlight: one peer's camera or screen large on every page (`set-spotlight`). */
export interface Spotlight {
  peerId: string;
  source: "camera" | "screen";
}

/** Why the session ended for good. */
export type EndReason = { kind: "left" } | { kind: "removed" } | { kind: "closed" } | { kind: "ended" } | { kind: "elsewhere" } | { kind: "denied" } | { kind: "revoked"; reason: string } | { kind: "error"; error: unknown };

export class RoomSession {
  readonly sig: Signalling;
  readonly media: Media;
  title = "";
  selfId = "";
  role: RoomRole = "participant";
  handRaised = false;
  /** The room is being recorded (everyone is told; hosts start and stop it). */
  recording = false;
  readonly peers = new Map<string, PeerState>();
  readonly chat: ChatMessage[] = [];
  connection: ConnectionState = "connecting";
  /** The peer speaking now (set from levels, or the server's `active-speaker`). */
  activeSpeaker: string | null = null;
  /** Whom a host put in the spotlight for everyone. */
  spotlight: Spotlight | null = null;
  /** The server has sent `active-speaker`: its choice wins over our local guess (see speaker.ts). */
  serverSpeaker = false;
  ended: EndReason | null = null;
  /** While the waiting room keeps us out: what we wait for (null once in, or never waiting). */
  waitStatus: WaitStatus | null = null;
  /** Hosts: who waits to be let in, oldest first. */
  waiting: WaitingPerson[] = [];
  /** Successful joins (the first, then each rejoin). */
  joins = 0;
  private joinedOnce = false;
  /** Settles when the device knows the router's capabilities: consuming waits for it. */
  private mediaReady: Promise<void> = Promise.resolve();

  onChange: (what: "peers" | "chat" | "self" | "connection" | "speaker" | "layers" | "waiting") => void = () => {};
  /** Hosts: people who just started waiting (for a notice). */
  onWaitingArrived: (people: WaitingPerson[]) => void = () => {};
  /** Resolves the wait when a host lets us in (`admitted`). */
  private letIn: (() => void) | null = null;
  onEnded: (reason: EndReason) => void = () => {};
  /** A notice for the person (muted by a host, …). */
  onNotice: (text: string) => void = () => {};

  constructor(
    readonly api: Api,
    readonly room: Room,
  ) {
    this.sig = new Signalling(api);
    this.media = new Media(this.sig, room.id);
    this.sig.onState = (state) => {
      this.connection = state;
      this.onChange("connection");
      if (state === "connected" && this.joinedOnce && !this.ended) void this.rejoin();
      // Waiting is not kept across a lost connection: ask again.
      else if (state === "connected" && this.waitStatus && !this.ended) void this.askAgain();
      if (state === "failed" && !this.ended) this.end({ kind: "error", error: new Error("Your session has ended. Please sign in again.") });
    };
    this.listen();
  }

  get isHost(): boolean {
    return this.role === "host";
  }

  /** The first join. Throws a SignalError the page turns into words. */
  async join(): Promise<JoinData> {
    await this.sig.connected();
    // `fresh`: this page has none of an earlier page's media (after a
    // reload we take our place back, but that page's transports are dead).
    const data = await this.joinWhenOpen();
    // The room as the answer saw it, taken before anything else is awaited:
    // a peer or producer announced while the device loads then adds to it,
    // where applying the answer after the load wiped what arrived meanwhile
    // (a student let in the moment the teacher joined was never shown).
    this.apply(data, true);
    this.mediaReady = this.media.load(data.routerRtpCapabilities);
    await this.mediaReady;
    this.joinedOnce = true;
    await this.consumeAll();
    return data;
  }

  /**
   * `join-room`, waiting while the class has not started (a session starts
   * when a host joins; until then students get `not_started`): the page
   * says so once and asks again every few seconds.
   */
  private async joinWhenOpen(): Promise<JoinData> {
    let told = false;
    for (;;) {
      try {
        const data = await this.sig.request<JoinData | WaitingAnswer>("join-room", { roomId: this.room.id, fresh: true });
        if (!("waiting" in data)) {
          this.setWaitStatus(null);
          return data;
        }
        // The waiting room: wait for `admitted` (or `denied`, which ends the session), then join again.
        const admitted = new Promise<void>((resolve) => (this.letIn = resolve));
        this.setWaitStatus(data.status);
        await admitted;
        if (this.ended) throw new Error("The session ended while waiting.");
      } catch (err) {
        if (!(err instanceof SignalError) || err.code !== "not_started" || this.ended) throw err;
        if (!told) this.onNotice("The class has not started yet. You will join as soon as the instructor opens it.");
        told = true;
        await new Promise((resolve) => setTimeout(resolve, WAIT_FOR_HOST_MS));
      }
    }
  }

  private setWaitStatus(status: WaitStatus | null): void {
    if (this.waitStatus === status) return;
    this.waitStatus = status;
    this.onChange("waiting");
  }

  /** Back in the queue after the connection came back while waiting. */
  private async askAgain(): Promise<void> {
    try {
      const data = await this.sig.request<JoinData | WaitingAnswer>("join-room", { roomId: this.room.id, fresh: true });
      // Let in meanwhile (the room no longer makes us wait): join properly.
      if (!("waiting" in data)) {
        await this.sig.request("leave-room", { roomId: this.room.id }).catch(() => {});
        this.letIn?.();
      } else this.setWaitStatus(data.status);
    } catch (err) {
      this.end({ kind: "error", error: err });
    }
  }

  /** Hosts: lets one waiting person in, or (no id) everyone. */
  async admit(waitingId?: string): Promise<void> {
    await this.sig.request("admit", waitingId ? { roomId: this.room.id, waitingId } : { roomId: this.room.id, all: true });
  }

  /** Hosts: turns one waiting person away. */
  async deny(waitingId: string): Promise<void> {
    await this.sig.request("deny", { roomId: this.room.id, waitingId });
  }

  /** The socket came back: join again; rebuild media when the server forgot us. */
  private async rejoin(): Promise<void> {
    try {
      const data = await this.sig.request<JoinData>("join-room", { roomId: this.room.id });
      this.apply(data, false);
      // Producers that went while we were away: their tiles go.
      const live = new Set<string>();
      for (const p of this.peers.values()) for (const x of p.producers) live.add(x.producerId);
      this.media.forgetAllBut(live);
      if (!data.resumed) {
        // Away past the grace period: we are a new peer, the server closed our transports.
        this.onNotice("You were away for a while and have rejoined the room.");
        await this.media.rebuild("both");
      } else {
        this.media.allLayersAgain();
        await this.media.rebuildDeferred();
      }
      await this.consumeAll();
    } catch (err) {
      this.end({ kind: "error", error: err });
    }
  }

  private apply(data: JoinData, first: boolean): void {
    this.joins += 1;
    this.title = data.title;
    this.selfId = data.peerId;
    this.role = data.role;
    this.recording = data.recording;
    this.peers.clear();
    for (const p of data.peers) this.peers.set(p.peerId, { ...p, producers: [...p.producers] });
    this.spotlight = data.spotlight ?? null;
    if (data.activeSpeaker) {
      this.serverSpeaker = true;
      this.setSpeaker(data.activeSpeaker.peerId);
    }
    if (first || data.chat.length >= this.chat.length) {
      this.chat.splice(0, this.chat.length, ...data.chat);
    }
    this.onChange("self");
    this.onChange("peers");
    this.onChange("chat");
  }

  private async consumeAll(): Promise<void> {
    for (const peer of this.peers.values()) {
      for (const p of peer.producers) await this.consume(p);
    }
  }

  private async consume(info: ProducerInfo): Promise<void> {
    try {
      await this.mediaReady;
      await this.media.consume(info);
    } catch (err) {
      // One track we could not receive must not break the room.
      console.warn("consume failed", info.producerId, err);
    }
  }

  private listen(): void {
    const s = this.sig;
    s.on<{ peer: PeerState }>("peer-joined", ({ peer }) => {
      this.peers.set(peer.peerId, { ...peer, producers: [...peer.producers] });
      this.onChange("peers");
      for (const p of peer.producers) void this.consume(p);
    });
    s.on<{ peerId: string }>("peer-left", ({ peerId }) => {
      const peer = this.peers.get(peerId);
      this.peers.delete(peerId);
      for (const p of peer?.producers ?? []) this.media.dropRemote(p.producerId);
      if (this.activeSpeaker === peerId) this.activeSpeaker = null;
      this.onChange("peers");
    });
    s.on<ProducerInfo>("new-producer", (info) => {
      const peer = this.peers.get(info.peerId);
      if (!peer) return;
      peer.producers = [...peer.producers.filter((p) => p.producerId !== info.producerId), info];
      this.onChange("peers");
      void this.consume(info);
    });
    s.on<{ producerId: string; peerId: string }>("producer-closed", ({ producerId, peerId }) => {
      const peer = this.peers.get(peerId);
      if (peer) peer.producers = peer.producers.filter((p) => p.producerId !== producerId);
      this.media.dropRemote(producerId);
      this.onChange("peers");
    });
    const paused = (value: boolean) => ({ producerId, peerId }: { producerId: string; peerId: string }) => {
      if (peerId === this.selfId) {
        // A host muted us: pause our side too, so the button tells the truth.
        const mine = [...this.media.producers].find(([, p]) => p.id === producerId);
        if (mine && value && !mine[1].paused) {
          mine[1].pause();
          this.onNotice("A host muted your microphone. Unmute when you want to speak.");
        }
        this.onChange("self");
        return;
      }
      const info = this.peers.get(peerId)?.producers.find((p) => p.producerId === producerId);
      if (info) info.paused = value;
      const remote = this.media.remote.get(producerId);
      if (remote) remote.info.paused = value;
      this.onChange("peers");
    };
    s.on("producer-paused", paused(true));
    s.on("producer-resumed", paused(false));
    s.on<{ consumerId: string }>("consumer-closed", ({ consumerId }) => this.media.dropConsumer(consumerId));
    s.on<ChatMessage>("chat-message", (m) => {
      if (this.chat.some((x) => x.id === m.id)) return;
      this.chat.push(m);
      this.onChange("chat");
    });
    const hand = (raised: boolean) => ({ peerId }: { peerId: string }) => {
      if (peerId === this.selfId) this.handRaised = raised;
      const peer = this.peers.get(peerId);
      if (peer) peer.handRaised = raised;
      this.onChange(peerId === this.selfId ? "self" : "peers");
    };
    s.on("hand-raised", hand(true));
    s.on("hand-lowered", hand(false));
    s.on<{ peerId: string; role: RoomRole }>("role-changed", ({ peerId, role }) => {
      if (peerId === this.selfId) {
        this.role = role;
        this.onNotice(role === "presenter" ? "A host made you a presenter: you may share your camera and screen." : "You are a participant again.");
        this.onChange("self");
      }
      const peer = this.peers.get(peerId);
      if (peer) peer.role = role;
      this.onChange("peers");
    });
    const recording = (on: boolean) => () => {
      this.recording = on;
      this.onNotice(on ? "This class is now being recorded." : "Recording stopped.");
      this.onChange("self");
    };
    s.on("recording-started", recording(true));
    s.on("recording-stopped", recording(false));
    s.on<{ peerId: string }>("active-speaker", ({ peerId }) => {
      this.serverSpeaker = true;
      this.setSpeaker(peerId);
    });
    s.on<{ consumerId: string; spatialLayer: number; temporalLayer: number }>("consumer-layers-changed", ({ consumerId, spatialLayer, temporalLayer }) => {
      if (this.media.layersChanged(consumerId, { spatialLayer, temporalLayer })) this.onChange("layers");
    });
    s.on<{ producerId: string; maxSpatialLayer: number }>("producer-layers-needed", ({ producerId, maxSpatialLayer }) => {
      void this.media.layersNeeded(producerId, maxSpatialLayer);
    });
    s.on<{ spotlight: Spotlight | null }>("spotlight-changed", ({ spotlight }) => {
      this.spotlight = spotlight;
      this.onChange("peers");
    });
    s.on<{ waiting: WaitingPerson[] }>("waiting-changed", ({ waiting }) => {
      const known = new Set(this.waiting.map((w) => w.waitingId));
      const arrived = waiting.filter((w) => !known.has(w.waitingId));
      this.waiting = waiting;
      this.onChange("waiting");
      if (arrived.length) this.onWaitingArrived(arrived);
    });
    s.on<{ status: WaitStatus }>("waiting-status", ({ status }) => {
      if (this.waitStatus) this.setWaitStatus(status);
    });
    s.on("admitted", () => {
      const letIn = this.letIn;
      this.letIn = null;
      letIn?.();
    });
    s.on("denied", () => this.end({ kind: "denied" }));
    s.on("removed", () => this.end({ kind: "removed" }));
    // The same person joined from another tab or device: that page has the place now.
    s.on("joined-elsewhere", () => this.end({ kind: "elsewhere" }));
    s.on("room-closed", () => this.end({ kind: "closed" }));
    s.on("session-ended", () => this.end({ kind: "ended" }));
    // The account was disabled or deleted: the server closes the socket next.
    s.on<{ reason: string }>("session-revoked", ({ reason }) => {
      this.api.endSession();
      this.end({ kind: "revoked", reason });
    });
  }

  setSpeaker(peerId: string | null): void {
    if (this.activeSpeaker === peerId) return;
    this.activeSpeaker = peerId;
    this.onChange("speaker");
  }

  // Requests the room's controls make.
  async sendChat(text: string): Promise<void> {
    const ack = await this.sig.request<{ id: string; sentAt: string }>("chat-message", { roomId: this.room.id, text });
    if (!this.chat.some((m) => m.id === ack.id)) {
      this.chat.push({ id: ack.id, sentAt: ack.sentAt, text: text.trim(), peerId: this.selfId, displayName: this.api.user?.displayName ?? "You" });
      this.onChange("chat");
    }
  }

  /** Hosts: puts a peer in the spotlight for everyone, or (null) takes it away. */
  async setSpotlight(peerId: string | null): Promise<void> {
    await this.sig.request("set-spotlight", { roomId: this.room.id, peerId, source: "camera" });
  }

  async setHand(raised: boolean): Promise<void> {
    await this.sig.request(raised ? "raise-hand" : "lower-hand", { roomId: this.room.id });
    this.handRaised = raised;
    this.onChange("self");
  }

  async hostAction(action: "mute" | "remove" | "promote" | "demote", peerId: string): Promise<void> {
    await this.sig.request("host-action", { roomId: this.room.id, action, peerId });
  }

  async setRecording(on: boolean): Promise<void> {
    await this.sig.request(on ? "start-recording" : "stop-recording", { roomId: this.room.id });
    this.recording = on;
    this.onChange("self");
  }

  async closeRoom(): Promise<void> {
    await this.sig.request("close-room", { roomId: this.room.id });
  }

  /** Ends today's class for everyone; the room stays open for the next one. */
  async endClass(): Promise<void> {
    await this.sig.request("end-session", { roomId: this.room.id });
  }

  async leave(): Promise<void> {
    if (this.ended) return;
    await this.sig.request("leave-room", { roomId: this.room.id }).catch(() => {});
    this.end({ kind: "left" });
  }

  end(reason: EndReason): void {
    if (this.ended) return;
    this.ended = reason;
    // Someone still waiting stops waiting (joinWhenOpen sees `ended`).
    this.letIn?.();
    this.media.close();
    this.sig.close();
    this.onEnded(reason);
  }
}
