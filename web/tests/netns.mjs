// Real hosts for the reachability suite: network namespaces joined by veth
// pairs, using only the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
// 203.0.113.0/24). Everything is created by the test and removed after it;
// nothing touches the machine's own addresses. Needs root (CI runs as root).
//
//   server 192.0.2.10 ─┐                ┌─ student A 198.51.100.20 (another host)
//   turn 192.0.2.130 ──┤─ internet ─────┤
//                      │  (router)      └─ school 203.0.113.2 ══ NAT ══ 203.0.113.129
//                                                                       └─ student B 203.0.113.130
//
// The school router masquerades its LAN; its firewall can block outbound
// UDP, or allow nothing but TCP 443, to mimic school and company networks.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ADDR = {
  server: "192.0.2.10",
  turn: "192.0.2.130",
  studentA: "198.51.100.20",
  schoolWan: "203.0.113.2",
  studentB: "203.0.113.130",
};

/** Whether this process may create namespaces (root with `ip` and `nft`). */
export function canCreateNamespaces() {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore" });
    execFileSync("nft", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const run = (args) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

export class Network {
  /** Builds the topology above; `destroy()` removes all of it. */
  static create() {
    const id = (process.pid % 46656).toString(36).padStart(3, "0");
    const net = new Network(id);
    try {
      net.build();
    } catch (e) {
      net.destroy();
      throw e;
    }
    return net;
  }

  constructor(id) {
    this.id = id;
    this.ns = {
      server: `vtps${id}`,
      turn: `vtpt${id}`,
      internet: `vtpi${id}`,
      studentA: `vtpa${id}`,
      school: `vtpn${id}`,
      studentB: `vtpb${id}`,
    };
    this.dir = mkdtempSync(join(tmpdir(), "vtp-netns-"));
    this.schoolLan = `vl${id}`;
  }

  build() {
    const { ns } = this;
    for (const name of Object.values(ns)) {
      run(["netns", "add", name]);
      this.exec(name, "ip", ["link", "set", "lo", "up"]);
    }
    // link(a, aIf, aAddr, b, bIf, bAddr)
    const link = (a, aIf, aAddr, b, bIf, bAddr) => {
      run(["link", "add", aIf, "netns", a, "type", "veth", "peer", "name", bIf, "netns", b]);
      this.exec(a, "ip", ["addr", "add", aAddr, "dev", aIf]);
      this.exec(b, "ip", ["addr", "add", bAddr, "dev", bIf]);
      this.exec(a, "ip", ["link", "set", aIf, "up"]);
      this.exec(b, "ip", ["link", "set", bIf, "up"]);
    };
    const id = this.id;
    link(ns.server, `vs${id}`, "192.0.2.10/25", ns.internet, `vis${id}`, "192.0.2.1/25");
    link(ns.turn, `vt${id}`, "192.0.2.130/25", ns.internet, `vit${id}`, "192.0.2.129/25");
    link(ns.studentA, `va${id}`, "198.51.100.20/24", ns.internet, `via${id}`, "198.51.100.1/24");
    link(ns.school, `vn${id}`, "203.0.113.2/25", ns.internet, `vin${id}`, "203.0.113.1/25");
    link(ns.school, this.schoolLan, "203.0.113.129/25", ns.studentB, `vb${id}`, "203.0.113.130/25");
    const route = (name, via) => this.exec(name, "ip", ["route", "add", "default", "via", via]);
    route(ns.server, "192.0.2.1");
    route(ns.turn, "192.0.2.129");
    route(ns.studentA, "198.51.100.1");
    route(ns.school, "203.0.113.1");
    route(ns.studentB, "203.0.113.129");
    for (const router of [ns.internet, ns.school]) {
      this.exec(router, "sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
    }
    // The school's NAT, and an empty forward chain the scenarios fill.
    this.nft(ns.school, [
      "table ip nat {",
      "  chain post {",
      "    type nat hook postrouting priority 100; policy accept;",
      `    oifname "vn${id}" masquerade`,
      "  }",
      "}",
      "table inet school {",
      "  chain forward {",
      "    type filter hook forward priority 0; policy accept;",
      "  }",
      "}",
    ].join("\n") + "\n");
  }

  /** Runs `cmd` in namespace `name`, synchronously; returns its stdout. */
  exec(name, cmd, args = []) {
    return execFileSync("ip", ["netns", "exec", name, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] }).toString();
  }

  /** A child process in namespace `name` (stdio as given). */
  spawn(name, cmd, args, options = {}) {
    return spawn("ip", ["netns", "exec", name, cmd, ...args], options);
  }

  nft(name, ruleset) {
    const file = join(this.dir, `rules-${name}-${Date.now()}.nft`);
    writeFileSync(file, ruleset);
    this.exec(name, "nft", ["-f", file]);
  }

  /** The school's firewall: `open` (NAT only), `no-udp` (outbound UDP
   * dropped), `no-udp-no-relay` (and the TURN host unreachable) or
   * `https-only` (nothing out but TCP 443 to the server and the TURN
   * host, as some school and company networks do). */
  schoolFirewall(mode) {
    const lan = this.schoolLan;
    const rules = {
      open: [],
      "no-udp": [`iifname "${lan}" meta l4proto udp drop`],
      // UDP dropped and the relay host out of reach: ICE-TCP or nothing.
      "no-udp-no-relay": [`iifname "${lan}" meta l4proto udp drop`, `iifname "${lan}" ip daddr ${ADDR.turn} drop`],
      "https-only": [
        `iifname "${lan}" ct state established,related accept`,
        `iifname "${lan}" ip daddr { ${ADDR.server}, ${ADDR.turn} } tcp dport 443 accept`,
        `iifname "${lan}" drop`,
      ],
    }[mode];
    if (rules === undefined) throw new Error(`unknown firewall mode ${mode}`);
    this.nft(this.ns.school, ["flush chain inet school forward", "table inet school {", "  chain forward {", ...rules.map((r) => "    " + r), "  }", "}"].join("\n") + "\n");
  }

  /** An executable that runs Chromium inside namespace `name` (for
   * Playwright's `executablePath`: the pipe it talks over is inherited). */
  chromiumIn(name, chromium = process.env.CHROMIUM ?? "/usr/bin/chromium") {
    const file = join(this.dir, `chromium-${name}`);
    writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${name} ${chromium} "$@"\n`);
    chmodSync(file, 0o755);
    return file;
  }

  destroy() {
    for (const name of Object.values(this.ns)) {
      try {
        // Processes left in it would keep its links alive: end them first.
        const pids = execFileSync("ip", ["netns", "pids", name]).toString().split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try { process.kill(Number(pid), "SIGKILL"); } catch {}
        }
        run(["netns", "del", name]);
      } catch {}
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A self-made CA and a certificate for `ip` (and `name`), with the SPKI
 * hash Chromium's `--ignore-certificate-errors-spki-list` takes. */
export function testCertificate(dir, ip, name) {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${name}`,
    "-addext", `subjectAltName=IP:${ip},DNS:${name}`,
  ], { stdio: "ignore" });
  const spki = execFileSync("sh", ["-c",
    `openssl x509 -in '${cert}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
  ]).toString().trim();
  return { key, cert, spki };
}

/** A certificate for 127.0.0.1 signed by a CA of its own, for a TLS
 * server inside a namespace (pebble's directory): `{ ca, cert, key }`. */
export function caSignedLoopbackCertificate(dir, name) {
  const f = (n) => join(dir, `${name}-${n}`);
  const run = (args) => execFileSync("openssl", args, { stdio: "ignore" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  run(["req", "-x509", ...ec, "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days", "2", "-subj", `/CN=${name} test CA`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
  run(["req", ...ec, "-keyout", f("key.pem"), "-out", f("req.csr"), "-subj", `/CN=${name}`]);
  writeFileSync(f("ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  run(["x509", "-req", "-in", f("req.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial",
    "-out", f("cert.pem"), "-days", "2", "-extfile", f("ext.cnf")]);
  return { ca: f("ca.crt"), cert: f("cert.pem"), key: f("key.pem") };
}

/** The SPKI hash (Chromium's --ignore-certificate-errors-spki-list) of a PEM certificate. */
export function spkiOf(pemFile) {
  return execFileSync("sh", ["-c",
    `openssl x509 -in '${pemFile}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
  ]).toString().trim();
}
