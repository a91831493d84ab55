// The core signalling scenarios of docs/protocol.md, driven by the official
// socket.io-client against a real `vtp` process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Vtp, pollUntil, waitFor } from "./harness.mjs";

let vtp;
before(async () => {
  vtp = await Vtp.start(["--reconnect-grace", "1s", "--login-rate-per-ip", "1000"]);
});
after(() => vtp?.stop());

test("a missing or forged token is refused with connect_error 'unauthorized'", async () => {
  await assert.rejects(vtp.socket(undefined), (e) => e.message === "unauthorized");
  await assert.rejects(vtp.socket("forged.token.here"), (e) => e.message === "unauthorized");
});

test("join, presence, chat with history, hands, leave", async () => {
  const teacher = await vtp.user("t1@example.org", "instructor");
  const ann = await vtp.user("ann1@example.org");
  const bob = await vtp.user("bob1@example.org");
  const roomId = await vtp.room(teacher.token);

  const t = await vtp.socket(teacher.token);
  const joinT = await t.emitWithAck("join-room", { roomId });
  assert.equal(joinT.ok, true);
  assert.equal(joinT.data.role, "host");
  assert.ok(joinT.data.routerRtpCapabilities.codecs.some((c) => c.mimeType === "audio/opus"));

  const a = await vtp.socket(ann.token);
  const joinA = await a.emitWithAck("join-room", { roomId, displayName: "Ann" });
  assert.equal(joinA.data.role, "participant");
  assert.deepEqual(joinA.data.peers.map((p) => p.peerId), [joinT.data.peerId]);
  const joined = await t.next("peer-joined");
  assert.equal(joined.peer.displayName, "Ann");

  const sent = await a.emitWithAck("chat-message", { roomId, text: "  hello class  " });
  assert.equal(sent.ok, true);
  const got = await t.next("chat-message");
  assert.deepEqual([got.text, got.peerId, got.id], ["hello class", joinA.data.peerId, sent.data.id]);

  const b = await vtp.socket(bob.token);
  const joinB = await b.emitWithAck("join-room", { roomId });
  assert.deepEqual(joinB.data.chat.map((m) => m.text), ["hello class"], "history on join");

  assert.equal((await b.emitWithAck("raise-hand", { roomId })).ok, true);
  assert.deepEqual(await t.next("hand-raised"), { peerId: joinB.data.peerId });
  const info = await t.emitWithAck("get-participants", { roomId });
  assert.equal(info.data.peers.find((p) => p.peerId === joinB.data.peerId).handRaised, true);

  assert.equal((await a.emitWithAck("leave-room", { roomId })).ok, true);
  assert.deepEqual(await b.next("peer-left"), { peerId: joinA.data.peerId });
  for (const s of [t, a, b]) s.disconnect();
});

test("relay reaches only the addressee; roles are enforced", async () => {
  const teacher = await vtp.user("t2@example.org", "instructor");
  const [ann, bob, cy] = await Promise.all(["ann2", "bob2", "cy2"].map((n) => vtp.user(`${n}@example.org`)));
  const roomId = await vtp.room(teacher.token);
  const [t, a, b, c] = await Promise.all([teacher, ann, bob, cy].map((u) => vtp.socket(u.token)));
  const ids = [];
  for (const s of [t, a, b, c]) ids.push((await s.emitWithAck("join-room", { roomId })).data.peerId);

  const offer = await a.emitWithAck("webrtc-offer", { roomId, to: ids[2], sdp: { type: "offer", sdp: "v=0" } });
  assert.equal(offer.ok, true);
  const relayed = await b.next("webrtc-offer");
  assert.equal(relayed.from, ids[1]);
  assert.deepEqual(relayed.sdp, { type: "offer", sdp: "v=0" });
  // A request of c's own is answered after whatever the server sent c before.
  await c.emitWithAck("get-room-info", { roomId });
  assert.ok(!c.events.some((e) => e.event === "webrtc-offer"), "a third peer must not see the offer");
  const nobody = await a.emitWithAck("ice-candidate", { roomId, to: "no-such-peer", candidate: {} });
  assert.equal(nobody.error.code, "not_found");

  const mute = await a.emitWithAck("host-action", { roomId, action: "mute", peerId: ids[2] });
  assert.equal(mute.error.code, "forbidden");
  const remove = await a.emitWithAck("host-action", { roomId, action: "remove", peerId: ids[2] });
  assert.equal(remove.error.code, "forbidden");

  const promote = await t.emitWithAck("host-action", { roomId, action: "promote", peerId: ids[1] });
  assert.equal(promote.ok, true);
  assert.deepEqual(await c.next("role-changed"), { peerId: ids[1], role: "presenter" });

  assert.equal((await t.emitWithAck("host-action", { roomId, action: "remove", peerId: ids[3] })).ok, true);
  assert.equal((await c.next("removed")).reason, "removed by a host");
  assert.deepEqual(await a.next("peer-left"), { peerId: ids[3] });
  const back = await c.emitWithAck("join-room", { roomId });
  assert.equal(back.error.code, "forbidden", "a removed user cannot rejoin the session");
  for (const s of [t, a, b, c]) s.disconnect();
});

test("a class starts with a host; room full, room closed", async () => {
  const teacher = await vtp.user("t3@example.org", "instructor");
  const admin = await vtp.user("admin3@example.org", "admin");
  const [ann, bob] = await Promise.all(["ann3", "bob3"].map((n) => vtp.user(`${n}@example.org`)));
  const roomId = await vtp.room(teacher.token, { maxParticipants: 2 });
  const [t, a, b, ad] = await Promise.all([teacher, ann, bob, admin].map((u) => vtp.socket(u.token)));
  assert.equal((await a.emitWithAck("join-room", { roomId })).error.code, "not_started", "a student alone cannot open the class");
  assert.equal((await t.emitWithAck("join-room", { roomId })).ok, true);
  assert.equal((await a.emitWithAck("join-room", { roomId })).ok, true);
  assert.equal((await b.emitWithAck("join-room", { roomId })).error.code, "room_full");
  assert.equal((await ad.emitWithAck("join-room", { roomId })).ok, true, "hosts are let in when full");

  assert.equal((await t.emitWithAck("close-room", { roomId })).ok, true);
  assert.ok((await a.next("room-closed")).reason);
  assert.equal((await b.emitWithAck("join-room", { roomId })).error.code, "room_closed");
  for (const s of [t, a, b, ad]) s.disconnect();
});

test("a dropped connection keeps its place during the grace period", async () => {
  const teacher = await vtp.user("t4@example.org", "instructor");
  const ann = await vtp.user("ann4@example.org");
  const roomId = await vtp.room(teacher.token);
  const t = await vtp.socket(teacher.token);
  await t.emitWithAck("join-room", { roomId });
  let a = await vtp.socket(ann.token);
  const first = await a.emitWithAck("join-room", { roomId });
  await t.next("peer-joined");

  a.disconnect();
  await waitFor(async () => (await vtp.metric("vtp_signalling_connections")) === 1, { what: "the server to see ann's connection go" });
  a = await vtp.socket(ann.token);
  const again = await a.emitWithAck("join-room", { roomId });
  assert.equal(again.data.peerId, first.data.peerId);
  assert.equal(again.data.resumed, true);
  // Past the end of the grace period the drop started (1 s), nobody left.
  const churn = () => t.events.filter((e) => e.event === "peer-left" || e.event === "peer-joined");
  const seen = await pollUntil(churn, (e) => e.length > 0, { ms: 1300 });
  assert.deepEqual(seen, [], "no churn for the others");

  a.disconnect();
  assert.deepEqual(await t.next("peer-left", 4000), { peerId: first.data.peerId }, "gone after the grace period");
  t.disconnect();
});

test("malformed requests get bad_request and the socket stays connected", async () => {
  const ann = await vtp.user("ann5@example.org");
  const a = await vtp.socket(ann.token);
  const cases = [
    ["join-room", "not an object"],
    ["join-room", { roomId: 5 }],
    ["join-room", {}],
    ["chat-message", { roomId: "x" }],
    ["host-action", { roomId: "x", action: "explode", peerId: "p" }],
    ["webrtc-offer", { roomId: "x" }],
    ["no-such-event", {}],
    ["chat-message", { roomId: "x", text: "y".repeat(70_000) }],
  ];
  for (const [event, payload] of cases) {
    const ack = await a.emitWithAck(event, payload);
    assert.equal(ack.ok, false, event);
    assert.equal(ack.error.code, "bad_request", `${event}: ${JSON.stringify(ack)}`);
  }
  assert.equal(a.connected, true);
  const missing = await a.emitWithAck("join-room", { roomId: "no-such-room" });
  assert.equal(missing.error.code, "not_found");
  a.disconnect();
});

test("the waiting room: a student waits, the host admits with the official client; admit and deny are checked", async () => {
  const teacher = await vtp.user("tw@example.org", "instructor");
  const [ann, bob] = await Promise.all(["annw", "bobw"].map((n) => vtp.user(`${n}@example.org`)));
  const roomId = await vtp.room(teacher.token, { waitingRoom: "host_admits" });
  const [t, a, b] = await Promise.all([teacher, ann, bob].map((u) => vtp.socket(u.token)));
  assert.equal((await t.emitWithAck("join-room", { roomId })).data.role, "host");
  assert.deepEqual((await t.next("waiting-changed")).waiting, []);

  const waitA = await a.emitWithAck("join-room", { roomId, displayName: "Ann" });
  assert.deepEqual([waitA.ok, waitA.data.waiting, waitA.data.status], [true, true, "waiting_for_host"]);
  assert.equal(waitA.data.peerId, undefined, "no peer while waiting");
  const listed = await t.next("waiting-changed");
  assert.deepEqual(listed.waiting.map((w) => [w.displayName, w.waitingId]), [["Ann", waitA.data.waitingId]]);
  // Waiting is not being in the room.
  assert.equal((await a.emitWithAck("get-room-info", { roomId })).error.code, "not_found");

  // Malformed and refused decisions change nothing.
  for (const bad of [{ roomId }, { roomId, all: true, waitingId: waitA.data.waitingId }, { roomId, waitingId: 7 }, "admit-everyone"]) {
    assert.equal((await t.emitWithAck("admit", bad)).error.code, "bad_request", JSON.stringify(bad));
  }
  assert.equal((await t.emitWithAck("deny", { roomId, waitingId: "nobody" })).error.code, "not_found");
  assert.equal((await b.emitWithAck("admit", { roomId, all: true })).error.code, "not_found", "not in the room");

  const admitted = a.next("admitted");
  assert.deepEqual((await t.emitWithAck("admit", { roomId, waitingId: waitA.data.waitingId })).data, { count: 1 });
  assert.deepEqual(await admitted, { roomId });
  assert.deepEqual((await t.next("waiting-changed")).waiting, []);
  const joinA = await a.emitWithAck("join-room", { roomId });
  assert.equal(joinA.data.role, "participant");
  assert.equal((await a.emitWithAck("admit", { roomId, all: true })).error.code, "forbidden", "students do not admit");

  const waitB = await b.emitWithAck("join-room", { roomId });
  assert.equal(waitB.data.waiting, true);
  await t.next("waiting-changed");
  const denied = b.next("denied");
  assert.deepEqual((await t.emitWithAck("deny", { roomId, all: true })).data, { count: 1 });
  assert.equal((await denied).roomId, roomId);
  for (const s of [t, a, b]) s.disconnect();
});
